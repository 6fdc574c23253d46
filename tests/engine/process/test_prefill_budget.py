"""The CPU prefill budget: a step's prompt tokens cut to a set amount of measured work."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from app.engine.process.prefill_budget import MEASURED_FROM, SMALLEST, PrefillBudget
from app.engine.types import RequestTiming
from tests.engine.process.test_batched_engine import collect, make_engine, reference, request
from tests.support.models import NEVER_EOS_MODEL_ID, load_model_and_tokenizer, snapshot_path


def test_until_a_step_has_been_measured_the_limit_holds() -> None:
    budget = PrefillBudget(2048, step_seconds=0.08)
    assert budget.tokens(decodes=8) == 2040
    budget.observe(prefill_tokens=MEASURED_FROM - 1, decodes=8, seconds=10.0)  # too small a step to tell
    assert budget.tokens(decodes=8) == 2040


def test_a_measured_cost_cuts_the_step_to_the_target() -> None:
    budget = PrefillBudget(2048, step_seconds=0.08)
    budget.observe(prefill_tokens=472, decodes=8, seconds=0.24)  # 0.5 ms a token
    assert budget.tokens(decodes=8) == 160 - 8
    budget.observe(prefill_tokens=152, decodes=8, seconds=0.16)  # 1 ms a token: the average moves a fifth of the way
    assert budget.seconds_per_token == pytest.approx(0.0006)
    assert budget.tokens(decodes=0) == 133


def test_the_limit_and_the_smallest_chunk_bound_it() -> None:
    fast = PrefillBudget(512, step_seconds=0.08)
    fast.observe(prefill_tokens=500, decodes=0, seconds=0.005)  # 10 µs a token: 8,000 would fit
    assert fast.tokens(decodes=4) == 508
    slow = PrefillBudget(2048, step_seconds=0.08)
    slow.observe(prefill_tokens=100, decodes=0, seconds=10.0)
    assert slow.tokens(decodes=30) == SMALLEST  # every prompt still moves on


def test_off_it_measures_nothing() -> None:
    budget = PrefillBudget(2048, step_seconds=0)  # a GPU, or --cpu-prefill-ms 0
    budget.observe(prefill_tokens=1000, decodes=0, seconds=5.0)
    assert budget.seconds_per_token is None and budget.tokens(decodes=3) == 2045


@pytest.fixture(scope="module")
def never_eos(hf_home: Path) -> tuple[Any, Any]:
    return load_model_and_tokenizer(hf_home, NEVER_EOS_MODEL_ID)


async def test_a_burst_of_newcomers_gets_first_tokens_one_after_another(
    hf_home: Path, never_eos: tuple[Any, Any]
) -> None:
    """With a step target far below what a token costs, every step prefills the smallest chunk (128 tokens):
    newcomers that arrive together start in arrival order, each its own steps later, and decode exactly as alone."""
    model, _ = never_eos
    engine = make_engine(snapshot_path(hf_home, NEVER_EOS_MODEL_ID), "budget", cpu_prefill_s=1e-9)
    try:
        await collect(engine.generate(request(list(range(400, 480)), 2)))  # one 80-token step: the cost is measured
        busy = asyncio.ensure_future(collect(engine.generate(request([7, 8, 9], 200))))  # newcomers wait for a step
        await asyncio.sleep(0.2)
        prompts = [list(range(start, start + 150)) for start in (100, 300, 500)]  # 450 tokens: four steps at least
        results = await asyncio.gather(*(collect(engine.generate(request(p, 6))) for p in prompts))
        await busy
    finally:
        engine.shutdown()
    assert [r.tokens for r in results] == [reference(model, p, 6) for p in prompts]
    timings: list[RequestTiming] = [r.finish.timing for r in results if r.finish and r.finish.timing]
    assert len(timings) == 3
    starts, firsts = [t.scheduled for t in timings], [t.first_token for t in timings]
    assert starts[0] < starts[1] < starts[2], "the burst was prefilled together"
    assert firsts[0] < firsts[1] < firsts[2]
