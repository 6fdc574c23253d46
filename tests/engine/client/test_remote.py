"""The engine in its own process: the same behaviour through the pipe, a clean end if it dies, and no
trust in a message of an unknown type."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from app.engine.client import remote
from app.engine.client.loader import LoadedModel, load_model
from app.engine.client.remote import RemoteEngine
from app.engine.messages import Progress
from app.engine.options import LoadOptions
from app.engine.types import FinishEvent, GenerationRequest, ModelInfo, SamplingParams, TokenEvent
from app.errors import ModelLoadFailed, ServiceUnavailable
from tests.support.models import NEVER_EOS_MODEL_ID, snapshot_path


@pytest.fixture
def loaded(hf_home: Path) -> Iterator[LoadedModel]:
    model = load_model(
        "remote-test", str(snapshot_path(hf_home, NEVER_EOS_MODEL_ID)), None, LoadOptions(), lambda *a: None
    )
    yield model
    model.close()


async def test_requests_run_through_the_engine_process(loaded: LoadedModel) -> None:
    params = SamplingParams(max_tokens=12, temperature=0.0, n=2)
    events = [e async for e in loaded.engine.generate(GenerationRequest("a", [5, 6, 7], params))]
    finishes = [e for e in events if isinstance(e, FinishEvent)]
    assert sorted(f.index for f in finishes) == [0, 1] and all(f.completion_tokens == 12 for f in finishes)
    assert loaded.engine.health().alive and loaded.engine.health().running == 0


async def test_a_killed_engine_process_ends_open_requests_with_an_error(loaded: LoadedModel) -> None:
    stream = loaded.engine.generate(GenerationRequest("long", [5], SamplingParams(max_tokens=1900, temperature=0)))
    assert isinstance(await anext(stream), TokenEvent)
    os.kill(loaded.engine._process.pid, signal.SIGKILL)
    rest = [e async for e in stream]
    assert isinstance(rest[-1], FinishEvent) and rest[-1].reason == "error"
    await asyncio.sleep(0)
    health = loaded.engine.health()
    assert not health.alive and health.detail
    with pytest.raises(ServiceUnavailable) as refused:  # a 503 that says when to retry, not a 500
        loaded.engine.generate(GenerationRequest("after", [5], SamplingParams(max_tokens=2)))
    assert refused.value.status == 503 and "Retry-After" in refused.value.headers


def _rogue_engine(
    environ: object, conn: Connection, folder: str, name: str, options: LoadOptions, group: object = None
) -> None:
    """An engine process speaking the old tuple protocol (a start target, so at module level)."""
    conn.send(Progress("config", None, None))
    conn.send(("ready", None, 1))
    conn.recv()  # until the parent gives up on it


def test_an_unknown_message_while_loading_fails_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "serve", _rogue_engine)
    stages: list[str] = []
    with pytest.raises(ModelLoadFailed) as info:
        RemoteEngine.spawn("unused", "rogue", LoadOptions(), lambda stage, *_: stages.append(stage))
    assert "unexpected message on the engine pipe: tuple" in info.value.message
    assert stages == ["config"]


class _IdleProcess:
    """Stands in for the engine process: alive until killed."""

    exitcode: int | None = None

    def is_alive(self) -> bool:
        return self.exitcode is None

    def kill(self) -> None:
        self.exitcode = -9

    def join(self, timeout: float | None = None) -> None:
        pass


async def test_an_unknown_message_while_serving_ends_open_requests_with_an_error() -> None:
    parent, child = multiprocessing.get_context("spawn").Pipe(duplex=True)
    process = _IdleProcess()
    info = ModelInfo(name="m", max_context=64, eos_token_ids=(), generation_defaults={}, vocab_size=100)
    engine = RemoteEngine(process, parent, info=info, max_rows=1, options=LoadOptions())  # type: ignore[arg-type]
    try:
        stream = engine.generate(GenerationRequest("r1", [5], SamplingParams(max_tokens=2)))
        child.send(("events", [("r1", [FinishEvent("r1", "length", 1, 2)])], 0, 0, []))  # the old tuple form
        events = [e async for e in stream]
        assert [(e.reason, e.error) for e in events if isinstance(e, FinishEvent)] == [
            ("error", "unexpected message on the engine pipe: tuple")
        ]
        assert process.exitcode == -9  # an engine process that speaks nonsense is stopped
        assert not engine.health().alive
    finally:
        child.close()
