"""Installing a model folder into a hub cache as a download would: content-addressed blobs, a snapshot of
links per commit, and refs; what ``huggingface_hub`` itself reads back."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from huggingface_hub import scan_cache_dir

from app.demo.hf_cache import commit_sha, hub_cache_dir, install_into_hub, read_hub_ref, repo_dir


@pytest.fixture
def model(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "config.json").write_text('{"model_type": "qwen3"}')
    (src / "model.safetensors").write_bytes(b"\x00weights")
    (src / "sub" / "extra.txt").write_text("nested")
    return src


def test_layout_is_what_huggingface_hub_reads(model: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert hub_cache_dir(home) == home / "hub"
    sha = install_into_hub(model, home / "hub", "acme/tiny")
    repo = repo_dir(home / "hub", "acme/tiny")
    assert repo.name == "models--acme--tiny"
    assert (repo / "refs" / "main").read_text() == sha and read_hub_ref(home / "hub", "acme/tiny") == sha
    weights = repo / "snapshots" / sha / "model.safetensors"
    assert weights.is_symlink() and weights.resolve().parent == (repo / "blobs").resolve()
    assert weights.resolve().name == hashlib.sha256(b"\x00weights").hexdigest()  # LFS files: their sha256
    assert (repo / "snapshots" / sha / "sub" / "extra.txt").read_text() == "nested"
    (cached,) = scan_cache_dir(home / "hub").repos
    assert cached.repo_id == "acme/tiny" and {r.commit_hash for r in cached.revisions} == {sha}
    assert not (repo / ".tmp-hfserve").exists()


def test_the_commit_follows_content_and_paths_only(model: Path, tmp_path: Path) -> None:
    first = commit_sha(model)
    os.utime(model / "config.json", (0, 0))
    assert commit_sha(model) == first
    (model / "config.json").write_text('{"model_type": "llama"}')
    assert commit_sha(model) != first
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="nothing to install"):
        commit_sha(tmp_path / "empty")


def test_reinstalling_is_idempotent_and_other_refs_share_blobs(model: Path, tmp_path: Path) -> None:
    sha = install_into_hub(model, tmp_path / "hub", "acme/tiny")
    blobs = sorted((repo_dir(tmp_path / "hub", "acme/tiny") / "blobs").iterdir())
    assert install_into_hub(model, tmp_path / "hub", "acme/tiny", ref="v1") == sha
    assert sorted((repo_dir(tmp_path / "hub", "acme/tiny") / "blobs").iterdir()) == blobs
    assert read_hub_ref(tmp_path / "hub", "acme/tiny", "v1") == sha
    assert read_hub_ref(tmp_path / "hub", "acme/tiny", "v2") is None
    assert read_hub_ref(tmp_path / "hub", "acme/other") is None


def test_a_ref_to_a_missing_snapshot_reads_as_absent(model: Path, tmp_path: Path) -> None:
    install_into_hub(model, tmp_path / "hub", "acme/tiny")
    (repo_dir(tmp_path / "hub", "acme/tiny") / "refs" / "main").write_text("0" * 40)
    assert read_hub_ref(tmp_path / "hub", "acme/tiny") is None


def test_only_old_crash_leftovers_are_removed(model: Path, tmp_path: Path) -> None:
    staging = repo_dir(tmp_path / "hub", "acme/tiny") / ".tmp-hfserve"
    old, recent = staging / "old-install", staging / "recent-install"
    old.mkdir(parents=True)
    recent.mkdir()
    hour_ago = time.time() - 7200
    os.utime(old, (hour_ago, hour_ago))
    install_into_hub(model, tmp_path / "hub", "acme/tiny")
    assert not old.exists() and recent.exists()


@pytest.mark.parametrize("repo_id", ["noslash", "a/b/c", "/name", "org/"])
def test_repo_ids_must_be_org_and_name(model: Path, tmp_path: Path, repo_id: str) -> None:
    with pytest.raises(ValueError, match="org/name"):
        install_into_hub(model, tmp_path / "hub", repo_id)
