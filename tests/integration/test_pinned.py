"""A server pinned to one model: loads it at start, serves it by default, refuses others."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.fixtures.tiny_models import CHAT_MODEL_ID, NEVER_EOS_MODEL_ID
from tests.support.server import ServerProcess, run_server

USER = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def pinned(hf_home: Path, logs_dir: Path) -> Iterator[ServerProcess]:
    with run_server(hf_home, logs_dir, CHAT_MODEL_ID, "--model-timeout", "0", wait="ready") as proc:
        yield proc


def test_ready_names_the_model(pinned: ServerProcess) -> None:
    resp = httpx.get(f"{pinned.url}/ready")
    assert resp.status_code == 200
    assert resp.json() == {
        "status": "ready",
        "model": f"{CHAT_MODEL_ID}@main",
        "responses_store": {"url": "memory://", "status": "ok"},
    }


def test_request_without_model_uses_the_pinned_one(pinned: ServerProcess) -> None:
    resp = httpx.post(f"{pinned.base_url}/chat/completions", json={"messages": USER, "max_tokens": 5}, timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.json()["model"] == f"{CHAT_MODEL_ID}@main"


def test_naming_the_pinned_model_works(pinned: ServerProcess) -> None:
    client = OpenAI(base_url=pinned.base_url, api_key="unused", max_retries=0)
    for name in (CHAT_MODEL_ID, f"{CHAT_MODEL_ID}@main"):
        assert client.chat.completions.create(model=name, messages=USER, max_tokens=3).usage.completion_tokens == 3


def test_other_models_are_refused(pinned: ServerProcess) -> None:
    for name in (NEVER_EOS_MODEL_ID, f"{CHAT_MODEL_ID}@other-branch"):
        resp = httpx.post(f"{pinned.base_url}/chat/completions", json={"model": name, "messages": USER})
        assert resp.status_code == 400
        assert resp.json()["error"]["code"] == "model_not_allowed"
    resp = httpx.post(f"{pinned.url}/load_model", json={"model": NEVER_EOS_MODEL_ID})
    assert resp.status_code == 400


def test_models_lists_only_the_pinned_model(pinned: ServerProcess) -> None:
    ids = [m["id"] for m in httpx.get(f"{pinned.base_url}/models").json()["data"]]
    assert ids == [CHAT_MODEL_ID]


def test_pinned_model_never_unloads(pinned: ServerProcess) -> None:
    time.sleep(1.5)  # --model-timeout 0 would unload any other model at once
    assert httpx.get(f"{pinned.url}/ready").status_code == 200
    assert '"model_unloading"' not in pinned.log()


def test_failed_pinned_model_is_not_ready(hf_home: Path, logs_dir: Path) -> None:
    with run_server(hf_home, logs_dir, "nobody/missing-model") as proc:
        deadline = time.monotonic() + 30
        while (body := httpx.get(f"{proc.url}/ready").json())["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.05)
        resp = httpx.get(f"{proc.url}/ready")
        assert resp.status_code == 503
        assert body["status"] == "failed" and "does not exist" in body["error"]
        assert httpx.get(f"{proc.url}/health").status_code == 200
