"""SIGTERM drains a real server: /ready turns 503 at once, new requests get a 503 with Retry-After while the
listener stays open for ``--drain-grace`` seconds, in-flight streams finish, then the listener closes and the
process exits 0. A real process and a real signal."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import httpx

from tests.fixtures.tiny_models import NEVER_EOS_MODEL_ID
from tests.support.server import run_server

GRACE = 4.0


def _stream_to_the_end(url: str, out: dict[str, object]) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 400, "stream": True, "temperature": 0}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=120) as resp:
        out["status"] = resp.status_code
        chunks = [line for line in resp.iter_lines() if line.startswith("data: {")]
    out["finish"] = json.loads(chunks[-1][6:])["choices"][0]["finish_reason"]
    out["ended"] = time.monotonic()


def test_sigterm_drains_then_closes(hf_home: Path, logs_dir: Path) -> None:
    env = {"HFSERVE_DRAIN_GRACE": str(GRACE), "HFSERVE_STREAM_INTERVAL_MS": "0"}
    with run_server(hf_home, logs_dir, NEVER_EOS_MODEL_ID, env=env, wait="ready") as server:
        in_flight: dict[str, object] = {}
        streaming = threading.Thread(target=_stream_to_the_end, args=(server.url, in_flight))
        streaming.start()
        time.sleep(0.5)  # the stream is under way
        server.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()

        deadline = signalled + 1.0
        while httpx.get(f"{server.url}/ready", timeout=2).status_code != 503:
            assert time.monotonic() < deadline, "/ready must turn 503 at once on SIGTERM"
            time.sleep(0.05)
        ready = httpx.get(f"{server.url}/ready", timeout=2)
        assert ready.json()["status"] == "draining" and ready.headers["Retry-After"]

        refused = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "new"}], "max_tokens": 2},
            timeout=10,
        )
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert refused.json()["error"]["type"] == "server_error"
        time.sleep(GRACE / 2)
        assert httpx.get(f"{server.url}/ready", timeout=2).status_code == 503, "the listener stays open meanwhile"

        streaming.join(timeout=120)
        assert in_flight == {"status": 200, "finish": "length", "ended": in_flight["ended"]}
        assert server.proc.wait(timeout=60) == 0
        assert time.monotonic() - signalled >= GRACE
        try:
            httpx.get(f"{server.url}/ready", timeout=2)
            raise AssertionError("the listener must be closed after the drain")
        except httpx.ConnectError:
            pass
        log = server.log()
        assert "drain_started" in log and "draining" in log
