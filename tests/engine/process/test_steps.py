"""The engine's clock: request timing on every finish, and step records only when tracing asks for them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from app.engine.client.loader import LoadedModel, load_model
from app.engine.options import LoadOptions
from app.engine.types import EngineEvent, FinishEvent, GenerationRequest, SamplingParams, StepRecord
from tests.support.models import NEVER_EOS_MODEL_ID, snapshot_path


class Recorder:
    """An ``EngineObserver`` keeping what it is shown."""

    def __init__(self) -> None:
        self.deliveries = 0
        self.steps: list[StepRecord] = []

    def delivered(self, batch: Sequence[tuple[str, Sequence[EngineEvent]]], steps: Sequence[StepRecord]) -> None:
        self.deliveries += 1
        self.steps.extend(steps)


@pytest.fixture(scope="module")
def traced(hf_home: Path) -> Iterator[LoadedModel]:
    folder = str(snapshot_path(hf_home, NEVER_EOS_MODEL_ID))
    model = load_model("steps-test", folder, None, LoadOptions(trace_steps=True), lambda *a: None)
    yield model
    model.close()


async def test_steps_record_prefills_and_decodes(traced: LoadedModel) -> None:
    recorder = Recorder()
    traced.engine.observer = recorder
    a = GenerationRequest("a", [5, 6, 7], SamplingParams(max_tokens=4, temperature=0))
    b = GenerationRequest("b", [8, 9], SamplingParams(max_tokens=3, temperature=0, n=2))

    async def collect(request: GenerationRequest) -> list[EngineEvent]:
        return [e async for e in traced.engine.generate(request)]

    results = await asyncio.gather(collect(a), collect(b))
    finishes = [e for events in results for e in events if isinstance(e, FinishEvent)]
    assert len(finishes) == 3
    for finish in finishes:
        t = finish.timing
        assert t is not None and 0 < t.arrived <= t.scheduled <= t.first_token <= t.finished
    prefilled = {rid: tokens for s in recorder.steps for rid, tokens in [(i, s.prefill_tokens) for i in s.prefill_ids]}
    assert set(prefilled) == {"a", "b"}
    decoded = [rid for s in recorder.steps for rid in s.decode_ids]
    # each choice's first token comes from its prefill, every other one from a decode step
    assert decoded.count("a") == 4 - 1 and decoded.count("b") == 2 * (3 - 1)
    assert all(s.started <= s.ended for s in recorder.steps)
    assert recorder.deliveries >= 1


def test_timing_is_carried_without_tracing_and_steps_are_not(hf_home: Path) -> None:
    folder = str(snapshot_path(hf_home, NEVER_EOS_MODEL_ID))
    model = load_model("no-steps-test", folder, None, LoadOptions(), lambda *a: None)
    try:
        recorder = Recorder()
        model.engine.observer = recorder

        async def run() -> list[EngineEvent]:
            return [e async for e in model.engine.generate(GenerationRequest("c", [5], SamplingParams(max_tokens=3)))]

        finish = asyncio.run(run())[-1]
        assert isinstance(finish, FinishEvent) and finish.timing is not None and finish.timing.first_token
        assert recorder.deliveries >= 1 and recorder.steps == []
    finally:
        model.close()
