"""The batched engine over the real tiny models (CPU), in its own engine process as it runs when serving.

Engines are spawned per module where the tests can share one (a spawn costs a few seconds), per test where
a test needs its own limits or stops its engine.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from app.demo.canned_chats import CANNED_CHATS
from app.engine.client.loader import load_model
from app.engine.client.remote import RemoteEngine
from app.engine.client.renderer import ChatRenderer
from app.engine.messages import Events
from app.engine.options import BatchLimits, LoadOptions
from app.engine.process.batched_engine import BatchedEngine
from app.engine.process.model_runner import ModelRunner
from app.engine.process.outbox import Outbox
from app.engine.types import EngineEvent, FinishEvent, GenerationRequest, SamplingParams, TokenEvent
from app.errors import InvalidRequest, Overloaded, ServiceUnavailable
from tests.support.models import CHAT_MODEL_ID, NEVER_EOS_MODEL_ID, load_model_and_tokenizer, snapshot_path

_ids = itertools.count()


@dataclass
class Result:
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    finish: FinishEvent | None = None


def request(prompt_ids: list[int], max_tokens: int, **params: Any) -> GenerationRequest:
    params.setdefault("temperature", 0.0)
    return GenerationRequest(f"req-{next(_ids)}", list(prompt_ids), SamplingParams(max_tokens=max_tokens, **params))


async def collect(events: AsyncIterator[EngineEvent]) -> Result:
    result = Result()
    async for event in events:
        if isinstance(event, TokenEvent):
            result.tokens.extend(event.token_ids)
            result.text += event.text
        else:
            result.finish = event
            result.text += event.text
    assert result.finish is not None, "the stream ended without a FinishEvent"
    return result


def make_engine(folder: Path, name: str, **limits: Any) -> RemoteEngine:
    """An engine process serving the model in ``folder`` (float32, as ``reference`` runs it)."""
    options = LoadOptions(dtype="float32", device="cpu", limits=BatchLimits(**limits))
    return load_model(name, str(folder), None, options, lambda *progress: None).engine


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Waits for a state the engine reaches on its own (e.g. ``running`` back to 0), reported over the pipe."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def reference(model: Any, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
    """What transformers' own greedy decoding produces for this prompt alone."""
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt_ids]), do_sample=False, max_new_tokens=max_new_tokens)
    return out[0, len(prompt_ids) :].tolist()


@pytest.fixture(scope="module")
def never_eos(hf_home: Path) -> tuple[Any, Any]:
    return load_model_and_tokenizer(hf_home, NEVER_EOS_MODEL_ID)


@pytest.fixture(scope="module")
def chat(hf_home: Path) -> tuple[Any, Any]:
    return load_model_and_tokenizer(hf_home, CHAT_MODEL_ID)


@pytest.fixture(scope="module")
def never_eos_folder(hf_home: Path) -> Path:
    return snapshot_path(hf_home, NEVER_EOS_MODEL_ID)


@pytest.fixture(scope="module")
def engine(never_eos_folder: Path) -> Iterator[RemoteEngine]:
    # a KV cache that holds the 100k-token request of the disconnect test (admission refuses what cannot fit)
    eng = make_engine(never_eos_folder, "never-eos", max_queue=64, max_kv_tokens=110_000)
    yield eng
    eng.shutdown()


@pytest.fixture(scope="module")
def chat_engine(hf_home: Path) -> Iterator[RemoteEngine]:
    eng = make_engine(snapshot_path(hf_home, CHAT_MODEL_ID), "chat", max_queue=64)
    yield eng
    eng.shutdown()


def encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def chat_prompt(tokenizer: Any, canned: dict[str, Any]) -> list[int]:
    return ChatRenderer(tokenizer).encode_chat(
        canned["messages"], tools=canned["tools"], template_kwargs=canned["chat_template_kwargs"]
    )


# ---------------------------------------------------------------------------------------------
# Greedy equivalence with model.generate
# ---------------------------------------------------------------------------------------------


async def test_concurrent_greedy_requests_match_generate(never_eos: tuple[Any, Any], engine: RemoteEngine) -> None:
    model, tokenizer = never_eos
    n = 12
    prompts = [
        [5],
        encode(tokenizer, "Nice to meet you, Bob."),
        encode(tokenizer, "The quick brown fox jumps over the lazy dog. Paris is the capital of France."),
        encode(tokenizer, 'def hello(name: str) -> str:\n    return f"Hello, {name}!"\n' * 3),
    ]
    assert len({len(p) for p in prompts}) == len(prompts)
    eos = (tokenizer.eos_token_id,)
    reqs = [request(p, n, stop_token_ids=eos) for p in prompts]
    results = await asyncio.gather(*(collect(engine.generate(r)) for r in reqs))
    for prompt, req, result in zip(prompts, reqs, results, strict=True):
        assert result.finish is not None
        assert result.finish.request_id == req.request_id
        assert result.finish.reason == "length"
        assert result.finish.prompt_tokens == len(prompt)
        assert result.finish.completion_tokens == n == len(result.tokens)
        assert result.tokens == reference(model, prompt, n)
        assert result.text == tokenizer.decode(result.tokens, skip_special_tokens=True)


async def test_chat_model_stops_at_eos_like_generate(chat: tuple[Any, Any], chat_engine: RemoteEngine) -> None:
    model, tokenizer = chat
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    canned = [c for c in CANNED_CHATS if c["name"] in ("greeting", "capital-no-thinking", "weather-tool-call")]
    prompts = [chat_prompt(tokenizer, c) for c in canned]
    assert len({len(p) for p in prompts}) == len(prompts)
    reqs = [request(p, 96, stop_token_ids=(eos,)) for p in prompts]
    results = await asyncio.gather(*(collect(chat_engine.generate(r)) for r in reqs))
    for chat_case, prompt, result in zip(canned, prompts, results, strict=True):
        expected = reference(model, prompt, 96)
        assert expected[-1] == eos
        assert result.tokens == expected[:-1]  # <|im_end|> ends the request without a TokenEvent
        assert eos not in result.tokens
        assert result.finish is not None
        assert result.finish.reason == "stop"
        assert result.finish.completion_tokens == len(expected)  # the EOS token is counted
        assert result.text == chat_case["completion"]


async def test_seeded_sampling_is_reproducible_through_the_engine(engine: RemoteEngine) -> None:
    prompt = [5, 6, 7]
    first = await collect(engine.generate(request(prompt, 20, temperature=1.0, seed=42)))
    second = await collect(engine.generate(request(prompt, 20, temperature=1.0, seed=42)))
    other = await collect(engine.generate(request(prompt, 20, temperature=1.0, seed=43)))
    assert first.tokens == second.tokens
    assert first.tokens != other.tokens


# ---------------------------------------------------------------------------------------------
# Abort, errors, stop strings
# ---------------------------------------------------------------------------------------------


async def test_abort_mid_generation(engine: RemoteEngine) -> None:
    req = request([5], 1500)
    events = engine.generate(req)
    seen = 0
    finish = None
    async for event in events:
        if isinstance(event, TokenEvent):
            seen += 1
            if seen == 3:
                assert engine.health().running == 1
                engine.abort(req.request_id)
        else:
            finish = event
    assert finish is not None
    assert finish.reason == "abort"
    assert 3 <= finish.completion_tokens < 1500 // 2
    await wait_until(lambda: engine.health().running == 0)
    after = await collect(engine.generate(request([5], 4)))
    assert after.finish is not None and after.finish.reason == "length"


async def test_client_going_away_aborts_the_request(engine: RemoteEngine) -> None:
    """Closing the event stream early (client disconnect) frees the engine for the next request."""
    events = engine.generate(request([9], 100_000))
    for _ in range(3):
        assert isinstance(await anext(events), TokenEvent)
    await events.aclose()
    # Without the abort the next request would wait behind 100k tokens.
    nxt = await asyncio.wait_for(collect(engine.generate(request([9], 4))), timeout=60)
    assert nxt.finish is not None and nxt.finish.reason == "length"


async def test_abort_while_waiting_in_the_queue(never_eos_folder: Path) -> None:
    engine = make_engine(never_eos_folder, "one-row", max_batch_size=1)
    try:
        running = request([5], 1500)
        queued = request([6], 1500)
        running_events = engine.generate(running)
        assert isinstance(await anext(running_events), TokenEvent)
        queued_task = asyncio.ensure_future(collect(engine.generate(queued)))
        while engine.health().waiting < 1:  # let the task enqueue its request
            await asyncio.sleep(0)
        engine.abort(queued.request_id)
        engine.abort(running.request_id)
        rest = await collect(running_events)
        assert rest.finish is not None and rest.finish.reason == "abort"
        result = await queued_task
        assert result.finish is not None
        assert result.finish.reason == "abort"
        assert result.finish.completion_tokens == 0
        assert result.tokens == []
        await wait_until(lambda: engine.health().waiting == 0 and engine.health().running == 0)
    finally:
        engine.shutdown()


async def test_abort_of_unknown_or_finished_request_is_harmless(engine: RemoteEngine) -> None:
    engine.abort("no-such-request")
    req = request([5], 3)
    done = await collect(engine.generate(req))
    engine.abort(req.request_id)
    assert done.finish is not None and done.finish.reason == "length"
    again = await collect(engine.generate(request([5], 3)))
    assert again.finish is not None and again.finish.reason == "length"


@pytest.mark.parametrize("bad_id", [10**6, -5])
async def test_out_of_range_prompt_token_is_refused_at_admission(engine: RemoteEngine, bad_id: int) -> None:
    with pytest.raises(InvalidRequest) as info:
        engine.generate(request([5, bad_id, 6], 8))
    assert info.value.param == "prompt"
    good = await collect(engine.generate(request([5, 6], 8)))
    assert good.finish is not None and good.finish.reason == "length"
    assert len(good.tokens) == 8
    assert engine.health().alive


async def test_stop_string_trims_the_output(chat: tuple[Any, Any], chat_engine: RemoteEngine) -> None:
    _, tokenizer = chat
    greeting = next(c for c in CANNED_CHATS if c["name"] == "greeting-no-thinking")
    assert greeting["completion"] == "Hello! I am a tiny demo model served by hfserve."
    prompt = chat_prompt(tokenizer, greeting)
    eos = (tokenizer.eos_token_id,)
    result = await collect(chat_engine.generate(request(prompt, 96, stop=("demo model",), stop_token_ids=eos)))
    assert result.finish is not None
    assert result.finish.reason == "stop"
    assert result.text == "Hello! I am a tiny "
    assert result.finish.detail == {"stop_sequence": "demo model"}  # which stop string ended it
    full = await collect(chat_engine.generate(request(prompt, 96, stop_token_ids=eos)))
    assert len(result.tokens) < len(full.tokens)
    assert full.finish is not None and full.finish.detail is None  # ended by eos


async def test_unmatched_stop_prefix_is_released_at_the_end(chat: tuple[Any, Any], chat_engine: RemoteEngine) -> None:
    _, tokenizer = chat
    greeting = next(c for c in CANNED_CHATS if c["name"] == "greeting-no-thinking")
    prompt = chat_prompt(tokenizer, greeting)
    # The completion ends with "hfserve." which is a prefix of this stop string: held, then released.
    stops = ("hfserve.!!", "never appears")
    result = await collect(
        chat_engine.generate(request(prompt, 96, stop=stops, stop_token_ids=(tokenizer.eos_token_id,)))
    )
    assert result.finish is not None
    assert result.finish.reason == "stop"  # by EOS
    assert result.finish.text.endswith("hfserve.")
    assert result.text == greeting["completion"]


async def test_max_tokens_limits_the_chat_model(chat: tuple[Any, Any], chat_engine: RemoteEngine) -> None:
    _, tokenizer = chat
    greeting = next(c for c in CANNED_CHATS if c["name"] == "greeting")
    prompt = chat_prompt(tokenizer, greeting)
    result = await collect(chat_engine.generate(request(prompt, 3, stop_token_ids=(tokenizer.eos_token_id,))))
    assert result.finish is not None
    assert result.finish.reason == "length"
    assert result.finish.completion_tokens == len(result.tokens) == 3


# ---------------------------------------------------------------------------------------------
# Queue limit and shutdown (own engines)
# ---------------------------------------------------------------------------------------------


async def test_full_queue_is_overloaded(never_eos_folder: Path) -> None:
    eng = make_engine(never_eos_folder, "small-queue", max_queue=1, max_batch_size=1)
    try:
        running = request([5], 1500)
        running_events = eng.generate(running)
        assert isinstance(await anext(running_events), TokenEvent)  # it left the queue
        waiting = request([6], 2)
        waiting_task = asyncio.ensure_future(collect(eng.generate(waiting)))
        while eng.health().waiting < 1:
            await asyncio.sleep(0)
        assert eng.health().running == 1
        with pytest.raises(Overloaded):
            eng.generate(request([7], 2))  # refused at once, before anything is streamed
        eng.abort(running.request_id)
        assert (await collect(running_events)).finish.reason == "abort"  # type: ignore[union-attr]
        assert (await waiting_task).finish.reason == "length"  # type: ignore[union-attr]
    finally:
        eng.shutdown()


async def test_shutdown_stops_the_engine(never_eos_folder: Path) -> None:
    eng = make_engine(never_eos_folder, "to-stop", max_queue=4)
    ok = await collect(eng.generate(request([5], 2)))
    assert ok.finish is not None and ok.finish.reason == "length"
    assert eng.health().alive
    eng.shutdown()
    health = eng.health()
    assert health.alive is False
    assert health.running == 0
    with pytest.raises(ServiceUnavailable):  # the model is being unloaded or replaced: a 503 to retry
        eng.generate(request([5], 2))


async def test_shutdown_aborts_queued_requests(never_eos_folder: Path) -> None:
    eng = make_engine(never_eos_folder, "shutdown-queue", max_queue=4, max_batch_size=1)
    try:
        current = request([5], 30)
        current_events = eng.generate(current)
        assert isinstance(await anext(current_events), TokenEvent)
        queued = request([6], 30)
        queued_task = asyncio.ensure_future(collect(eng.generate(queued)))
        while eng.health().waiting < 1:
            await asyncio.sleep(0)
        stopping = asyncio.ensure_future(asyncio.to_thread(eng.shutdown))
        rest = await collect(current_events)
        result = await queued_task
        await stopping
        assert rest.finish is not None and rest.finish.reason in ("abort", "length")  # it may finish first
        assert result.finish is not None
        assert result.finish.reason == "abort"
        assert result.tokens == []
    finally:
        eng.shutdown()


# ---------------------------------------------------------------------------------------------
# Continuous batching: joins, per-row parameters, n, logprobs, chunked prefill
# ---------------------------------------------------------------------------------------------


async def test_requests_joining_mid_flight_still_match_generate(
    never_eos: tuple[Any, Any], engine: RemoteEngine
) -> None:
    """Rows join a batch that is already decoding (left padding, own positions) and leave early."""
    model, tokenizer = never_eos
    long_prompt = encode(tokenizer, "A long running request about the sea and the sky. " * 4)
    first = engine.generate(request(long_prompt, 60))
    head = [await anext(first) for _ in range(5)]  # the batch is decoding now
    later_prompts = [encode(tokenizer, "hi"), encode(tokenizer, "Paris is the capital of France."), [5, 6, 7, 8]]
    later = await asyncio.gather(*(collect(engine.generate(request(p, 9 + i))) for i, p in enumerate(later_prompts)))
    rest = await collect(first)
    tokens = [t for e in head for t in e.token_ids] + rest.tokens  # type: ignore[union-attr]
    assert tokens == reference(model, long_prompt, 60)
    for i, (prompt, result) in enumerate(zip(later_prompts, later, strict=True)):
        assert result.tokens == reference(model, prompt, 9 + i)


async def test_seed_gives_the_same_output_whatever_else_is_in_the_batch(engine: RemoteEngine) -> None:
    alone = await collect(engine.generate(request([5, 6, 7], 24, temperature=1.0, seed=1234)))
    crowd = [engine.generate(request([9 + i] * (3 + i), 24, temperature=1.0, top_p=0.9)) for i in range(6)]
    together, *_ = await asyncio.gather(
        collect(engine.generate(request([5, 6, 7], 24, temperature=1.0, seed=1234))), *(collect(c) for c in crowd)
    )
    assert together.tokens == alone.tokens


async def test_each_row_keeps_its_own_parameters(never_eos: tuple[Any, Any], engine: RemoteEngine) -> None:
    model, tokenizer = never_eos
    prompt = encode(tokenizer, "Tell me something.")
    forced = tokenizer.convert_tokens_to_ids("Ġthe") if "Ġthe" in tokenizer.get_vocab() else 100
    greedy, biased, banned, sampled = await asyncio.gather(
        collect(engine.generate(request(prompt, 16))),
        collect(engine.generate(request(prompt, 16, logit_bias={forced: 100.0}))),
        collect(engine.generate(request(prompt, 16, logit_bias={t: -100.0 for t in reference(model, prompt, 16)}))),
        collect(engine.generate(request(prompt, 16, temperature=1.5, top_k=50, seed=7))),
    )
    assert greedy.tokens == reference(model, prompt, 16)
    assert biased.tokens == [forced] * 16
    assert not set(banned.tokens) & set(greedy.tokens)
    assert sampled.tokens != greedy.tokens


async def test_n_choices_share_the_prompt(never_eos: tuple[Any, Any], engine: RemoteEngine) -> None:
    model, _ = never_eos
    prompt = [5, 6, 7, 8]
    events = [e async for e in engine.generate(request(prompt, 10, n=3))]
    finishes = sorted((e for e in events if isinstance(e, FinishEvent)), key=lambda e: e.index)
    assert [f.index for f in finishes] == [0, 1, 2] and all(f.completion_tokens == 10 for f in finishes)
    per_choice = {
        i: [t for e in events if isinstance(e, TokenEvent) and e.index == i for t in e.token_ids] for i in range(3)
    }
    assert per_choice[0] == per_choice[1] == per_choice[2] == reference(model, prompt, 10)  # greedy: all equal

    async def sampled() -> dict[int, list[int]]:
        out: dict[int, list[int]] = {0: [], 1: [], 2: []}
        async for e in engine.generate(request(prompt, 12, n=3, temperature=1.0, seed=99)):
            if isinstance(e, TokenEvent):
                out[e.index].extend(e.token_ids)
        return out

    first, second = await sampled(), await sampled()
    assert first == second  # seed + choice index: reproducible
    assert len({tuple(v) for v in first.values()}) == 3  # and the choices differ


async def test_logprobs_describe_the_chosen_tokens(engine: RemoteEngine) -> None:
    events = [e async for e in engine.generate(request([5, 6], 6, logprobs=3))]
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    assert sum(len(e.token_ids) for e in tokens) == 6
    for event in tokens:
        assert len(event.logprobs) == len(event.token_ids) == len(event.top_logprobs)
        for chosen, top in zip(event.logprobs, event.top_logprobs, strict=True):
            assert len(top) == 3
            assert chosen.logprob <= 0.0
            assert top[0].token_id == chosen.token_id and top[0].logprob == pytest.approx(chosen.logprob)  # greedy
            assert [t.logprob for t in top] == sorted((t.logprob for t in top), reverse=True)


async def test_prompt_logprobs_come_on_each_choices_first_event(
    never_eos: tuple[Any, Any], engine: RemoteEngine
) -> None:
    model, tokenizer = never_eos
    prompt = encode(tokenizer, "The capital of France is Paris.")
    with torch.inference_mode():
        expected = torch.log_softmax(model(torch.tensor([prompt])).logits[0].float(), dim=-1)
    events = [e async for e in engine.generate(request(prompt, 3, n=2, prompt_logprobs=2))]
    for index in (0, 1):
        mine = [e for e in events if e.index == index]
        assert isinstance(mine[0], TokenEvent) and mine[0].prompt_logprobs is not None
        assert all(e.prompt_logprobs is None for e in mine[1:])
        scored = mine[0].prompt_logprobs
        assert [entry.token_id for entry in scored] == prompt and scored[0].logprob is None
        for position, entry in enumerate(scored[1:]):
            assert entry.logprob == pytest.approx(float(expected[position, entry.token_id]), abs=1e-4)
            assert [t.token_id for t in entry.top] == torch.topk(expected[position], 2).indices.tolist()
    generated = [t for e in events if isinstance(e, TokenEvent) and e.index == 0 for t in e.token_ids]
    assert generated == reference(model, prompt, 3)  # scoring leaves the generation as it was


async def test_max_tokens_zero_only_scores_the_prompt(engine: RemoteEngine) -> None:
    events = [e async for e in engine.generate(request([5, 6, 7, 8], 0, prompt_logprobs=0))]
    assert len(events) == 1 and isinstance(events[0], FinishEvent)
    finish = events[0]
    assert finish.reason == "length" and finish.completion_tokens == 0 and finish.prompt_tokens == 4
    assert finish.prompt_logprobs is not None and [e.token_id for e in finish.prompt_logprobs] == [5, 6, 7, 8]
    assert all(entry.top == () for entry in finish.prompt_logprobs)
    assert engine.health().alive and engine.health().running == 0


async def test_long_prompts_are_prefilled_in_chunks(never_eos: tuple[Any, Any], never_eos_folder: Path) -> None:
    model, tokenizer = never_eos
    engine = make_engine(never_eos_folder, "chunked", max_num_batched_tokens=16)
    try:
        short = engine.generate(request([5, 6], 40))
        await anext(short)  # decoding has started
        long_prompt = encode(tokenizer, "word " * 90)
        assert len(long_prompt) > 5 * 16
        long_result, short_result = await asyncio.gather(
            collect(engine.generate(request(long_prompt, 8))), collect(short)
        )
        assert long_result.tokens == reference(model, long_prompt, 8)
        assert short_result.finish is not None and short_result.finish.completion_tokens == 40
    finally:
        engine.shutdown()


async def test_aborted_row_leaves_the_batch_within_a_step(engine: RemoteEngine) -> None:
    keep = engine.generate(request([5], 400))
    drop = request([6], 100_000)
    dropped = engine.generate(drop)
    await anext(keep)
    await anext(dropped)
    await wait_until(lambda: engine.health().running == 2)
    dropped.close()
    await wait_until(lambda: engine.health().running == 1, timeout=2)
    result = await collect(keep)
    assert result.finish is not None and result.finish.completion_tokens == 400


async def test_stream_interval_merges_tokens_without_losing_any(
    never_eos: tuple[Any, Any], never_eos_folder: Path
) -> None:
    model, _ = never_eos
    engine = make_engine(never_eos_folder, "interval", stream_interval=0.05)
    try:
        events = [e async for e in engine.generate(request([5, 6, 7], 40))]
        tokens = [t for e in events if isinstance(e, TokenEvent) for t in e.token_ids]
        assert tokens == reference(model, [5, 6, 7], 40)
        assert len([e for e in events if isinstance(e, TokenEvent)]) < 40  # delivered in fewer, larger pieces
    finally:
        engine.shutdown()


@pytest.mark.parametrize("family", ["llama", "mistral", "gemma2"])
async def test_other_model_families_match_generate(never_eos: tuple[Any, Any], family: str, tmp_path: Path) -> None:
    """Decoding goes through each family's own mask handling (gemma2 has sliding-window layers)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    _, tokenizer = never_eos
    shape = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "vocab_size": 768,
        "max_position_embeddings": 512,
    }
    extra = {"gemma2": {"sliding_window": 16, "query_pre_attn_scalar": 8}, "mistral": {"sliding_window": None}}
    config = AutoConfig.for_model(family, **shape, **extra.get(family, {}))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    engine = make_engine(tmp_path, family)
    try:
        prompts = [[5, 6, 7], list(range(10, 40)), [9] * 12]
        results = await asyncio.gather(*(collect(engine.generate(request(p, 12))) for p in prompts))
        for prompt, result in zip(prompts, results, strict=True):
            assert result.finish is not None and result.finish.reason == "length", result.finish
            assert result.tokens == reference(model, prompt, 12)
    finally:
        engine.shutdown()


async def test_kv_budget_refuses_what_cannot_fit_and_admits_what_fits_alone(never_eos_folder: Path) -> None:
    engine = make_engine(never_eos_folder, "kv", max_kv_tokens=64)
    try:
        with pytest.raises(InvalidRequest) as info:
            engine.generate(request(list(range(5, 105)), 8, n=2))
        assert info.value.param == "max_tokens"
        alone = await collect(engine.generate(request(list(range(5, 45)), 20)))  # 60 tokens: fits alone
        assert alone.finish is not None and alone.finish.completion_tokens == 20
        assert engine.health().waiting == 0
    finally:
        engine.shutdown()


class _LoopKiller(BaseException):
    """Not an Exception: nothing in a step catches it, as with a bug in the loop itself."""


def test_a_dead_loop_fails_its_requests_and_says_so_last(hf_home: Path) -> None:
    """In the engine process, ``on_death`` ends the process (the HTTP side then sees the pipe close)."""

    class DyingRunner(ModelRunner):
        def decode(self, tokens: Any) -> torch.Tensor:
            raise _LoopKiller("the loop broke")

    model, tokenizer = load_model_and_tokenizer(hf_home, NEVER_EOS_MODEL_ID)
    sent: list[Events] = []
    deaths: list[str] = []
    engine = BatchedEngine(
        DyingRunner(model, 0),
        tokenizer,
        name="dying",
        limits=BatchLimits(),
        outbox=Outbox(sent.append, 0.0),
        on_death=deaths.append,
    )
    engine.submit(request([5, 6, 7], 8))
    deadline = time.monotonic() + 30
    while not deaths and time.monotonic() < deadline:
        time.sleep(0.05)
    engine.shutdown()
    assert deaths and "the loop broke" in deaths[0]
    finishes = [e for message in sent for _, events in message.batch for e in events if isinstance(e, FinishEvent)]
    assert [(f.reason, "the loop broke" in (f.error or "")) for f in finishes] == [("error", True)]
