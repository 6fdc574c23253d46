"""/v1/models lists generative models in the cache, read fresh, and idle models unload; /v1/models/{id} is one of
them."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.fixtures.tiny_models import (
    CHAT_MODEL_ID,
    ENCODER_MODEL_ID,
    NEVER_EOS_MODEL_ID,
    UNSERVED_MODEL_ID,
    install_in_hf_cache,
)
from tests.support.models import snapshot_path
from tests.support.server import ServerProcess, run_server


def model_ids(server: ServerProcess) -> list[str]:
    listing = httpx.get(f"{server.base_url}/models").json()
    assert listing["object"] == "list"
    assert all(card["object"] == "model" and isinstance(card["created"], int) for card in listing["data"])
    return [card["id"] for card in listing["data"]]


def test_lists_served_models_only(server: ServerProcess) -> None:
    ids = model_ids(server)
    assert CHAT_MODEL_ID in ids and NEVER_EOS_MODEL_ID in ids and ENCODER_MODEL_ID in ids  # the encoder embeds
    assert UNSERVED_MODEL_ID not in ids


def test_sees_models_downloaded_after_start(server: ServerProcess, hf_home: Path, tmp_path: Path) -> None:
    assert "later/arrival" not in model_ids(server)
    files = shutil.copytree(snapshot_path(hf_home, NEVER_EOS_MODEL_ID), tmp_path / "files")  # follows the cache's links
    install_in_hf_cache(files, hf_home, "later/arrival")
    assert "later/arrival" in model_ids(server)


def test_idle_model_unloads_and_reloads(hf_home: Path, logs_dir: Path) -> None:
    body = {"model": NEVER_EOS_MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    with run_server(hf_home, logs_dir, "--model-timeout", "1") as proc:
        assert httpx.post(f"{proc.base_url}/chat/completions", json=body, timeout=60).status_code == 200
        assert httpx.get(f"{proc.url}/ready").json()["loaded"] == [f"{NEVER_EOS_MODEL_ID}@main"]
        deadline = time.monotonic() + 15
        while httpx.get(f"{proc.url}/ready").json()["loaded"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert httpx.get(f"{proc.url}/ready").json()["loaded"] == []

        def events() -> list[str]:
            return [json.loads(line)["event"] for line in proc.log().splitlines() if line.startswith("{")]

        while "model_unloaded" not in events() and time.monotonic() < deadline:
            time.sleep(0.1)  # stopping the engine process takes a moment
        assert "model_unloaded" in events()
        assert httpx.post(f"{proc.base_url}/chat/completions", json=body, timeout=60).status_code == 200
        assert proc.stop() == 0  # SIGTERM shuts down cleanly


def test_one_model_by_id_with_the_official_client(server: ServerProcess) -> None:
    client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    listed = {card.id: card for card in client.models.list()}
    card = client.models.retrieve(CHAT_MODEL_ID)  # an id with a slash in it
    assert card.model_dump() == listed[CHAT_MODEL_ID].model_dump()
    assert httpx.get(f"{server.base_url}/models/{CHAT_MODEL_ID}@main").json() == card.model_dump(exclude_none=True)
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("nobody/nothing")
    assert missing.value.body["code"] == "model_not_found" and missing.value.body["param"] == "model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve(UNSERVED_MODEL_ID)  # in the cache, but not a model this server serves
