"""Tensor parallelism on CPU: two real ranks over gloo, spawned as a server spawns them, sharding the tiny
Qwen3 with transformers' tp plan. Greedy output must equal one process's, for concurrent requests of several
lengths (rows joining and leaving the batch, chunked prefill) and for several choices of one prompt."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from app.engine.client.remote import RemoteEngine
from app.engine.messages import (
    CopyBlock,
    Decode,
    Discard,
    DropChunk,
    Join,
    Keep,
    PagedForward,
    Prefill,
    PrefillChunk,
    ProtocolError,
    StageChunked,
)
from app.engine.options import BatchLimits, LoadOptions
from app.engine.process.tensor_parallel import replay
from app.engine.types import FinishEvent, GenerationRequest, SamplingParams, TokenEvent
from app.errors import ModelLoadFailed
from tests.support.models import (
    CHAT_MODEL_ID,
    ENCODER_MODEL_ID,
    NEVER_EOS_MODEL_ID,
    load_model_and_tokenizer,
    snapshot_path,
)

LIMITS = BatchLimits(max_batch_size=8, max_num_batched_tokens=16)  # prompts over 16 tokens prefill in chunks


@pytest.fixture(scope="module")
def two_ranks(hf_home: Path) -> Iterator[RemoteEngine]:
    options = LoadOptions(dtype="float32", tensor_parallel_size=2, limits=LIMITS)
    engine = RemoteEngine.spawn(str(snapshot_path(hf_home, NEVER_EOS_MODEL_ID)), "tp", options, lambda *_: None)
    yield engine
    engine.shutdown()


async def tokens_of(engine: RemoteEngine, request: GenerationRequest) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    async for event in engine.generate(request):
        if isinstance(event, TokenEvent):
            out.setdefault(event.index, []).extend(event.token_ids)
        elif isinstance(event, FinishEvent):
            assert event.reason == "length", event
    return out


def greedy(model: Any, prompt: list[int], n: int) -> list[int]:
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False, min_new_tokens=n)
    return out[0, len(prompt) :].tolist()


async def test_two_ranks_decode_exactly_what_one_process_does(two_ranks: RemoteEngine, hf_home: Path) -> None:
    model, _ = load_model_and_tokenizer(hf_home, NEVER_EOS_MODEL_ID)
    prompts = [[5, 6, 7], list(range(20, 60)), [9] * 11, list(range(100, 118))]
    lengths = [12, 6, 20, 9]
    requests = [
        GenerationRequest(f"tp-{i}", prompt, SamplingParams(max_tokens=n, temperature=0.0))
        for i, (prompt, n) in enumerate(zip(prompts, lengths, strict=True))
    ]
    results = await asyncio.gather(*(tokens_of(two_ranks, r) for r in requests))
    for prompt, n, result in zip(prompts, lengths, results, strict=True):
        assert result == {0: greedy(model, prompt, n)}
    choices = await tokens_of(
        two_ranks, GenerationRequest("tp-n", [7, 8, 9], SamplingParams(max_tokens=5, temperature=0.0, n=3))
    )
    assert choices == {i: greedy(model, [7, 8, 9], 5) for i in range(3)}
    assert two_ranks.health().alive
    assert two_ranks.health().kv_blocks_total > 0  # every rank runs the paged cache


async def test_an_aborted_request_leaves_the_ranks_in_step(two_ranks: RemoteEngine, hf_home: Path) -> None:
    model, _ = load_model_and_tokenizer(hf_home, NEVER_EOS_MODEL_ID)
    stream = two_ranks.generate(GenerationRequest("tp-abort", list(range(30, 70)), SamplingParams(max_tokens=200)))
    async for _ in stream:
        break
    await stream.aclose()
    after = await tokens_of(
        two_ranks, GenerationRequest("tp-after", [3, 4], SamplingParams(max_tokens=6, temperature=0.0))
    )
    assert after == {0: greedy(model, [3, 4], 6)}


async def test_prompt_logprobs_are_scored_on_every_rank(two_ranks: RemoteEngine, hf_home: Path) -> None:
    """The scoring forward runs on both shards (its collectives need both); values equal one process's, and the
    ranks decode in step afterwards."""
    model, _ = load_model_and_tokenizer(hf_home, NEVER_EOS_MODEL_ID)
    prompt = list(range(40, 61))  # longer than a prefill chunk here
    with torch.inference_mode():
        expected = torch.log_softmax(model(torch.tensor([prompt])).logits[0].float(), dim=-1)
    params = SamplingParams(max_tokens=0, prompt_logprobs=1)
    events = [e async for e in two_ranks.generate(GenerationRequest("tp-score", prompt, params))]
    assert len(events) == 1 and isinstance(events[0], FinishEvent) and events[0].prompt_logprobs is not None
    scored = events[0].prompt_logprobs[1:]
    assert [e.logprob for e in scored] == pytest.approx(
        [float(expected[i, t]) for i, t in enumerate(prompt[1:])], abs=1e-4
    )
    after = await tokens_of(
        two_ranks, GenerationRequest("tp-then", [3, 4], SamplingParams(max_tokens=6, temperature=0.0))
    )
    assert after == {0: greedy(model, [3, 4], 6)}


def test_a_rank_that_dies_makes_the_engine_unhealthy(hf_home: Path) -> None:
    options = LoadOptions(dtype="float32", tensor_parallel_size=2, limits=LIMITS)
    engine = RemoteEngine.spawn(str(snapshot_path(hf_home, NEVER_EOS_MODEL_ID)), "tp-dies", options, lambda *_: None)
    try:
        assert engine.health().alive
        (follower,) = engine._followers
        follower.kill()
        follower.join(10)
        assert not engine.health().alive
    finally:
        engine.shutdown()


@pytest.mark.parametrize(
    ("repo", "size", "complaint"),
    [(ENCODER_MODEL_ID, 2, "no tensor-parallel plan"), (CHAT_MODEL_ID, 3, "does not split across")],
)
def test_models_that_cannot_be_sharded_fail_to_load_clearly(
    hf_home: Path, repo: str, size: int, complaint: str
) -> None:
    options = LoadOptions(dtype="float32", tensor_parallel_size=size, limits=LIMITS)
    with pytest.raises(ModelLoadFailed, match=complaint):
        RemoteEngine.spawn(str(snapshot_path(hf_home, repo)), "no-tp", options, lambda *_: None)


class RecordingRunner:
    """Records the calls a follower rank makes (a stand-in for its ModelRunner: the replay is what is tested)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self.calls.append((name, args))


def test_every_replay_message_runs_its_call_and_anything_else_is_refused() -> None:
    messages = [
        Prefill([[1, 2]], [2], None),
        PrefillChunk([3, 4], 0),
        StageChunked(2, 1),
        DropChunk(),
        Join(),
        Discard(),
        Keep([0]),
        Decode([5]),
        PagedForward([([0, 3], 16, [7])]),
        CopyBlock(2, 5),
    ]
    runner = RecordingRunner()
    for message in messages:
        replay(runner, pickle.loads(pickle.dumps(message)))  # type: ignore[arg-type]
    assert runner.calls == [
        ("prefill", ([[1, 2]], [2], None)),
        ("prefill_chunk", ([3, 4], 0)),
        ("stage_chunked", (2, 1)),
        ("drop_chunk", ()),
        ("join", ()),
        ("discard", ()),
        ("keep", ([0],)),
        ("decode", ([5],)),
        ("forward", ([([0, 3], 16, [7])],)),
        ("copy_block", (2, 5)),
    ]
    with pytest.raises(ProtocolError, match="tuple"):
        replay(runner, ("decode", ([5],)))  # type: ignore[arg-type]
