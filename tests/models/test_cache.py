"""The view of the local Hugging Face cache: which models it holds, with their task and revision."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.models.cache import CachedModel, scan_cache, served_models
from tests.fixtures.tiny_models import install_in_hf_cache
from tests.support.models import CHAT_MODEL_ID, ENCODER_MODEL_ID, NEVER_EOS_MODEL_ID, UNSERVED_MODEL_ID, snapshot_path


@pytest.fixture
def hub(hf_home: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny-model hub cache (this test may install into it)."""
    home = tmp_path / "home"
    shutil.copytree(hf_home / "hub", home / "hub", symlinks=True)
    return home / "hub"


def plain_copy(snapshot: Path, dest: Path) -> Path:
    """A snapshot's files as plain files (snapshots hold symlinks into blobs/)."""
    shutil.copytree(snapshot, dest, symlinks=False)
    return dest


def by_id(models: list[CachedModel]) -> dict[str, CachedModel]:
    return {m.model_id: m for m in models}


def test_scan_cache_lists_every_model_with_its_task(hub: Path) -> None:
    found = by_id(scan_cache(hub))
    assert {CHAT_MODEL_ID, NEVER_EOS_MODEL_ID, ENCODER_MODEL_ID, UNSERVED_MODEL_ID} <= set(found)
    assert found[CHAT_MODEL_ID].task == "text-generation"
    assert found[NEVER_EOS_MODEL_ID].task == "text-generation"
    assert found[ENCODER_MODEL_ID].task == "embed"  # a bare encoder: an embedding model
    assert found[UNSERVED_MODEL_ID].task is None
    chat = found[CHAT_MODEL_ID]
    assert (chat.repo_id, chat.revision) == (CHAT_MODEL_ID, "main")
    assert chat.created > 0


def test_served_models_excludes_what_is_not_served(hub: Path) -> None:
    ids = set(by_id(served_models(hub)))
    assert CHAT_MODEL_ID in ids
    assert NEVER_EOS_MODEL_ID in ids
    assert ENCODER_MODEL_ID in ids
    assert UNSERVED_MODEL_ID not in ids


def test_a_model_installed_after_a_first_scan_is_seen(hub: Path, tmp_path: Path) -> None:
    before = by_id(served_models(hub))
    assert "acme/late-arrival" not in before
    src = plain_copy(snapshot_path(hub.parent, NEVER_EOS_MODEL_ID), tmp_path / "src")
    install_in_hf_cache(src, hub.parent, "acme/late-arrival")
    after = by_id(served_models(hub))
    assert set(after) == set(before) | {"acme/late-arrival"}
    assert after["acme/late-arrival"].task == "text-generation"


def test_other_refs_are_listed_with_their_revision(hub: Path, tmp_path: Path) -> None:
    src = plain_copy(snapshot_path(hub.parent, CHAT_MODEL_ID), tmp_path / "src")
    install_in_hf_cache(src, hub.parent, CHAT_MODEL_ID, ref="v1")
    found = by_id(scan_cache(hub))
    assert f"{CHAT_MODEL_ID}@v1" in found
    assert found[f"{CHAT_MODEL_ID}@v1"].revision == "v1"
    assert CHAT_MODEL_ID in found  # main is still there


def test_snapshots_without_a_readable_config_are_skipped(hub: Path, tmp_path: Path) -> None:
    src = tmp_path / "no-config"
    src.mkdir()
    (src / "README.md").write_text("nothing here")
    install_in_hf_cache(src, hub.parent, "acme/no-config")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    install_in_hf_cache(broken, hub.parent, "acme/broken-config")
    ids = set(by_id(scan_cache(hub)))
    assert "acme/no-config" not in ids
    assert "acme/broken-config" not in ids
    assert CHAT_MODEL_ID in ids


def test_task_falls_back_to_model_type(hub: Path, tmp_path: Path) -> None:
    src = tmp_path / "typed"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"model_type": "qwen3"}))
    install_in_hf_cache(src, hub.parent, "acme/typed-only")
    assert by_id(scan_cache(hub))["acme/typed-only"].task == "text-generation"


def test_empty_or_missing_cache(tmp_path: Path) -> None:
    assert scan_cache(tmp_path / "missing") == []
    assert served_models(tmp_path) == []
