"""Loading a model: the stages it reports, what it learns about the model, and what it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.engine.client.loader import load_model
from app.engine.options import LoadOptions
from app.errors import InvalidRequest, ModelNotFound
from tests.support.models import CHAT_MODEL_ID, NEVER_EOS_MODEL_ID, UNSERVED_MODEL_ID, snapshot_path


def test_loader_reports_stages_in_order_for_a_local_directory(hf_home: Path) -> None:
    events: list[tuple[str, int | None, int | None]] = []
    folder = snapshot_path(hf_home, CHAT_MODEL_ID)
    loaded = load_model("tiny-chat-local", str(folder), None, LoadOptions(device="cpu"), lambda *e: events.append(e))
    try:
        stages = [stage for stage, _, _ in events]
        assert stages[:2] == ["processor", "config"]
        assert set(stages[2:]) == {"weights"}  # no download for a local directory
        weights = [(cur, total) for stage, cur, total in events if stage == "weights"]
        assert weights, "no weights progress was reported"
        currents = [cur for cur, _ in weights]
        assert currents == sorted(currents)
        last_current, last_total = weights[-1]
        assert last_total is not None and last_total > 0
        assert last_current == last_total
        assert loaded.info.name == "tiny-chat-local"
        assert loaded.info.max_context == 2048
        assert loaded.info.eos_token_ids == (loaded.tokenizer.convert_tokens_to_ids("<|im_end|>"),)
        assert loaded.serving.engine is loaded.engine
        assert loaded.engine.health().alive
    finally:
        loaded.close()
    assert loaded.engine.health().alive is False


def test_loader_caps_the_context_with_max_model_len(hf_home: Path) -> None:
    folder = snapshot_path(hf_home, NEVER_EOS_MODEL_ID)
    loaded = load_model("n", str(folder), None, LoadOptions(device="cpu", max_model_len=100), lambda *e: None)
    try:
        assert loaded.info.max_context == 100
    finally:
        loaded.close()


def test_loading_a_model_served_as_nothing_is_an_invalid_request(hf_home: Path) -> None:
    events: list[tuple[str, int | None, int | None]] = []
    folder = snapshot_path(hf_home, UNSERVED_MODEL_ID)
    with pytest.raises(InvalidRequest) as info:
        load_model("tiny-masked-lm", str(folder), None, LoadOptions(device="cpu"), lambda *e: events.append(e))
    assert info.value.param == "model"
    assert "not a generative, embedding or cross-encoder model" in info.value.message
    assert "weights" not in [stage for stage, _, _ in events]


def test_loading_a_missing_directory_is_model_not_found(tmp_path: Path) -> None:
    events: list[Any] = []
    with pytest.raises(ModelNotFound) as info:
        load_model("gone", str(tmp_path / "missing"), None, LoadOptions(device="cpu"), lambda *e: events.append(e))
    assert info.value.status == 404
    assert info.value.param == "model"
    assert events == []
