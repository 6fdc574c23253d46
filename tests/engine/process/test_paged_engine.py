"""The paged engine over the real tiny model (CPU), in its own engine process: the prefix cache, copy-on-write
choices and preemption, each checked against transformers' own greedy decoding."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.engine.client.remote import RemoteEngine
from app.engine.types import TokenEvent
from tests.engine.process.test_batched_engine import collect, make_engine, reference, request
from tests.support.models import NEVER_EOS_MODEL_ID, load_model_and_tokenizer, snapshot_path

SYSTEM = list(range(100, 180))  # a shared 80-token prefix: five full blocks of 16


@pytest.fixture(scope="module")
def never_eos(hf_home: Path) -> tuple[Any, Any]:
    return load_model_and_tokenizer(hf_home, NEVER_EOS_MODEL_ID)


@pytest.fixture(scope="module")
def folder(hf_home: Path) -> Path:
    return snapshot_path(hf_home, NEVER_EOS_MODEL_ID)


@pytest.fixture(scope="module")
def engine(folder: Path) -> Iterator[RemoteEngine]:
    eng = make_engine(folder, "paged", max_kv_tokens=2048)
    yield eng
    eng.shutdown()


async def test_the_model_is_served_from_a_block_pool(engine: RemoteEngine) -> None:
    health = engine.health()
    assert (health.kv_blocks_total, health.kv_capacity) == (128, 2048)
    assert health.prefix_caching


async def test_a_prefix_reused_after_its_request_finished_gives_the_same_greedy_output(
    never_eos: tuple[Any, Any], engine: RemoteEngine
) -> None:
    model, _ = never_eos
    first_prompt, second_prompt = [*SYSTEM, 5, 6, 7], [*SYSTEM, 8, 9]
    first = await collect(engine.generate(request(first_prompt, 12)))
    assert first.finish is not None and first.finish.cached_tokens == 0
    before = engine.health()
    second = await collect(engine.generate(request(second_prompt, 12)))  # the first one has finished
    assert second.finish is not None and second.finish.cached_tokens == 80
    assert second.tokens == reference(model, second_prompt, 12)
    after = engine.health()
    assert after.prefix_cache_hits - before.prefix_cache_hits == 80
    assert after.prefix_cache_queries - before.prefix_cache_queries == len(second_prompt)


async def test_a_whole_cached_prompt_still_computes_its_last_token(
    never_eos: tuple[Any, Any], engine: RemoteEngine
) -> None:
    model, _ = never_eos
    prompt = list(range(200, 232))  # exactly two blocks
    await collect(engine.generate(request(prompt, 4)))
    again = await collect(engine.generate(request(prompt, 10)))
    assert again.finish is not None and again.finish.cached_tokens == 16
    assert again.tokens == reference(model, prompt, 10)


async def test_choices_share_the_prompt_and_copy_its_partial_block(
    never_eos: tuple[Any, Any], engine: RemoteEngine
) -> None:
    model, _ = never_eos
    prompt = list(range(300, 340))  # two full blocks and a partial one
    tokens: list[list[int]] = [[], [], []]
    async for event in engine.generate(request(prompt, 20, n=3)):
        if isinstance(event, TokenEvent):
            tokens[event.index].extend(event.token_ids)
    assert tokens == [reference(model, prompt, 20)] * 3  # each choice writes its own copy of the last block


async def test_without_prefix_caching_nothing_is_reused(never_eos: tuple[Any, Any], folder: Path) -> None:
    model, _ = never_eos
    engine = make_engine(folder, "no-prefix", max_kv_tokens=512, prefix_caching=False)
    try:
        prompt = [*SYSTEM, 1, 2]
        for _ in range(2):
            result = await collect(engine.generate(request(prompt, 8)))
            assert result.finish is not None and result.finish.cached_tokens == 0
            assert result.tokens == reference(model, prompt, 8)
        assert engine.health().prefix_cache_hits == 0 and not engine.health().prefix_caching
    finally:
        engine.shutdown()


async def test_under_kv_pressure_the_newest_row_is_preempted_and_recomputed(
    never_eos: tuple[Any, Any], folder: Path
) -> None:
    """Six blocks of 16 tokens; three requests of 20 + 40 tokens need three blocks each: at most two fit."""
    model, _ = never_eos
    engine = make_engine(folder, "tight", max_kv_tokens=96)
    try:
        prompts = [list(range(10 + 30 * i, 30 + 30 * i)) for i in range(3)]
        results = await asyncio.gather(*(collect(engine.generate(request(p, 40))) for p in prompts))
        for prompt, result in zip(prompts, results, strict=True):
            assert result.finish is not None and result.finish.reason == "length"
            assert result.tokens == reference(model, prompt, 40)
        health = engine.health()
        assert health.preemptions > 0
        assert health.kv_blocks_used == 0 or health.running == 0
    finally:
        engine.shutdown()


async def test_requests_sent_together_with_a_new_shared_prefix_compute_it_once(
    never_eos: tuple[Any, Any], engine: RemoteEngine
) -> None:
    model, _ = never_eos
    system = list(range(400, 480))  # five full blocks no earlier test has cached
    prompts = [[*system, 1, 2], [*system, 3], [*system, 4, 5, 6]]
    results = await asyncio.gather(*(collect(engine.generate(request(prompt, 8))) for prompt in prompts))
    # one of them prefills the system prompt; the others wait for its blocks rather than compute them again
    assert sorted(r.finish.cached_tokens for r in results if r.finish is not None) == [0, 80, 80]
    for prompt, result in zip(prompts, results, strict=True):
        assert result.tokens == reference(model, prompt, 8)
