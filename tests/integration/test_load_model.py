"""/load_model: stage order, progress, cached, shared loads, and a loop that never blocks.

Models not yet in the cache come from ``FakeHub``, a stand-in for the Hugging Face Hub (which cannot
be reached from the tests) that serves real files over HTTP on 127.0.0.1, slowly, so a load is long
enough to observe.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.tiny_models import CHAT_MODEL_ID, NEVER_EOS_MODEL_ID
from tests.support.fake_hub import FakeHub
from tests.support.models import clone_hf_home, snapshot_path
from tests.support.server import ServerProcess, run_server

REMOTE = ["remote/model-a", "remote/model-b", "remote/model-c", "remote/pinned-slow"]


def load_events(server: ServerProcess, model: str, sink: list[dict] | None = None) -> list[dict]:
    """POST /load_model and parse its SSE frames, appending each to ``sink`` as it arrives."""
    events = sink if sink is not None else []
    with httpx.Client(timeout=120) as http, http.stream("POST", f"{server.url}/load_model", json={"model": model}) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        buffer = ""
        for text in r.iter_text():
            buffer += text
            while "\n\n" in buffer:
                frame, buffer = buffer.split("\n\n", 1)
                assert frame.startswith("data: ")
                events.append(json.loads(frame.removeprefix("data: ")))
    assert buffer == ""
    return events


def stages(events: list[dict]) -> list[str]:
    seen: list[str] = []
    for event in events:
        if event["status"] == "loading" and (not seen or seen[-1] != event["stage"]):
            seen.append(event["stage"])
    return seen


@pytest.fixture(scope="module")
def hub(hf_home: Path) -> Iterator[FakeHub]:
    with FakeHub(chunk_size=32 * 1024, chunk_delay=0.04) as fake:
        for repo in REMOTE:
            fake.add_repo(repo, snapshot_path(hf_home, NEVER_EOS_MODEL_ID))
        yield fake


def hub_env(hub: FakeHub) -> dict[str, str]:
    return {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}


@pytest.fixture(scope="module")
def online_home(hf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clone_hf_home(hf_home, tmp_path_factory.mktemp("online_home"))


@pytest.fixture(scope="module")
def online(hub: FakeHub, online_home: Path, logs_dir: Path) -> Iterator[ServerProcess]:
    with run_server(online_home, logs_dir, "--model-timeout", "-1", env=hub_env(hub)) as proc:
        yield proc


def test_cached_model_skips_download(server: ServerProcess) -> None:
    events = load_events(server, CHAT_MODEL_ID)
    assert stages(events) == ["processor", "config", "weights"]
    assert all(e["model"] == f"{CHAT_MODEL_ID}@main" for e in events)
    weights = [e["progress"] for e in events if e.get("stage") == "weights"]
    assert weights[-1]["current"] == weights[-1]["total"] > 0
    assert events[-1] == {"status": "ready", "model": f"{CHAT_MODEL_ID}@main", "cached": False}
    assert all("progress" not in e for e in events if e.get("stage") in ("processor", "config"))


def test_loaded_model_answers_cached(server: ServerProcess) -> None:
    load_events(server, NEVER_EOS_MODEL_ID)
    assert load_events(server, NEVER_EOS_MODEL_ID) == [
        {"status": "ready", "model": f"{NEVER_EOS_MODEL_ID}@main", "cached": True}
    ]


def test_download_stage_reports_bytes(online: ServerProcess, online_home: Path) -> None:
    events = load_events(online, "remote/model-a")
    assert stages(events) == ["processor", "config", "download", "weights"]
    download = [e["progress"] for e in events if e.get("stage") == "download"]
    weights_bytes = sum(p.stat().st_size for p in snapshot_path(online_home, NEVER_EOS_MODEL_ID).glob("*.safetensors"))
    assert download[-1]["current"] == download[-1]["total"] >= weights_bytes
    assert [p["current"] for p in download] == sorted(p["current"] for p in download)
    assert events[-1] == {"status": "ready", "model": "remote/model-a@main", "cached": False}
    assert (online_home / "hub" / "models--remote--model-a" / "refs" / "main").is_file()


def test_loading_never_blocks_the_loop(online: ServerProcess) -> None:
    """While a slow download runs, /health, /v1/models answer at once; a chat for that model waits for it."""
    events: list[dict] = []
    loader = threading.Thread(target=load_events, args=(online, "remote/model-b", events))
    loader.start()
    deadline = time.monotonic() + 30
    while not events and time.monotonic() < deadline:
        time.sleep(0.01)  # wait for the first frame: the load has started
    answered: list[float] = []
    chat: dict = {}

    def ask() -> None:
        body = {"model": "remote/model-b", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
        chat.update(httpx.post(f"{online.base_url}/chat/completions", json=body, timeout=120).json())

    asker = threading.Thread(target=ask)
    asker.start()
    for _ in range(10):
        started = time.monotonic()
        assert httpx.get(f"{online.url}/health", timeout=5).status_code == 200
        assert httpx.get(f"{online.base_url}/models", timeout=5).status_code == 200
        answered.append(time.monotonic() - started)
    still_loading = events[-1]["status"] == "loading"
    loader.join(60)
    asker.join(60)
    assert still_loading, "the load finished before the probes; it must be slow enough to observe"
    assert max(answered) < 1.0, answered
    assert events[-1]["status"] == "ready"
    assert chat["usage"]["completion_tokens"] == 3


def test_concurrent_loads_share_one_load(online: ServerProcess) -> None:
    results: list[list[dict]] = [[], []]
    threads = [
        threading.Thread(target=lambda i=i: results[i].extend(load_events(online, "remote/model-c"))) for i in (0, 1)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(r[-1]["status"] == "ready" for r in results)
    starts = [json.loads(line) for line in online.log().splitlines() if '"model_load_started"' in line]
    assert [s["model"] for s in starts].count("remote/model-c@main") == 1


def test_unknown_model_ends_with_error(online: ServerProcess) -> None:
    events = load_events(online, "nobody/no-such-model")
    assert events[-1]["status"] == "error"
    assert "does not exist" in events[-1]["message"]


def test_bad_load_request_is_400(server: ServerProcess) -> None:
    for body in ({}, {"model": ""}, {"model": 5}):
        resp = httpx.post(f"{server.url}/load_model", json=body)
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "model"


def test_pinned_server_is_not_ready_while_loading(hub: FakeHub, online_home: Path, logs_dir: Path) -> None:
    with run_server(online_home, logs_dir, "remote/pinned-slow", env=hub_env(hub)) as proc:
        first = httpx.get(f"{proc.url}/ready")
        assert first.status_code == 503
        assert first.json()["status"] == "loading" and first.json()["model"] == "remote/pinned-slow@main"
        assert httpx.get(f"{proc.url}/health").status_code == 200
        proc.wait_ready()
        assert httpx.get(f"{proc.url}/ready").json() == {
            "status": "ready",
            "model": "remote/pinned-slow@main",
            "responses_store": {"url": "memory://", "status": "ok"},
        }
