"""The engine in its own process: the same behaviour through the pipe, and a clean end if it dies."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engine.client.loader import LoadedModel, load_model
from app.engine.options import LoadOptions
from app.engine.types import FinishEvent, GenerationRequest, SamplingParams, TokenEvent
from app.errors import EngineFailure
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
    with pytest.raises(EngineFailure):
        loaded.engine.generate(GenerationRequest("after", [5], SamplingParams(max_tokens=2)))
