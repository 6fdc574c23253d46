"""One model across several devices: transformers' tensor-parallel plans (``tp_plan="auto"``) over
torch.distributed, with one engine process per rank.

Rank 0 is the engine process the HTTP side talks to: it schedules, samples and detokenizes as with one
device. Its model runner is a ``ReplicatedRunner``: every call that runs the model or changes its cache is
first sent to each follower rank, which replays it on its own shard with a plain ``ModelRunner``. The model
runner's calls take and return plain values and it keeps its tensors itself, so every rank holds the same
cache state and enters the same collectives in the same order; the followers' logits are dropped.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import structlog
import torch
import torch.distributed as dist

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
    ReplayCall,
    ScorePrompt,
    StageChunked,
    StopReplay,
    ToFollower,
)
from app.engine.options import TensorParallelGroup
from app.engine.process.model_runner import ModelRunner
from app.engine.process.paged_runner import PagedRunner
from app.engine.process.prompt_scoring import PositionScore

log = structlog.get_logger(__name__)

# An idle follower waits on its queue, never in a collective; the limit only ends a rank whose peer hung.
_COLLECTIVE_TIMEOUT = timedelta(minutes=30)


def join_group(rank: int, group: TensorParallelGroup, device: str) -> str:
    """Join the group as ``rank`` (gloo on CPU, NCCL on CUDA, one GPU per rank); returns this rank's device."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(group.port),
        RANK=str(rank),
        WORLD_SIZE=str(group.world_size),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(group.world_size),
    )
    if device.startswith("cuda"):
        torch.cuda.set_device(rank)
        device, backend = f"cuda:{rank}", "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend, rank=rank, world_size=group.world_size, timeout=_COLLECTIVE_TIMEOUT)
    return device


def leave_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class _ToFollowers:
    """What rank 0's runners share: each call that runs the model or changes its state goes to the followers
    first, then runs here (the follower replays it: ``replay``)."""

    _commands: Sequence[Any]

    def _send(self, message: ToFollower) -> None:
        for commands in self._commands:
            commands.put(message)

    def score_prompt(self, prompt: Sequence[int], top_k: int) -> list[PositionScore]:
        self._send(ScorePrompt(list(prompt), top_k))
        return super().score_prompt(prompt, top_k)  # type: ignore[misc]

    def stop_followers(self) -> None:
        self._send(StopReplay())


class ReplicatedRunner(_ToFollowers, ModelRunner):
    """Rank 0's model runner, replicated on the followers."""

    def __init__(self, model: Any, pad_id: int, commands: Sequence[Any]) -> None:
        super().__init__(model, pad_id)
        self._commands = commands

    def prefill(
        self, prompts: Sequence[Sequence[int]], counts: Sequence[int], inputs: Mapping[str, Any] | None
    ) -> torch.Tensor:
        self._send(Prefill([list(p) for p in prompts], list(counts), dict(inputs) if inputs else None))
        return super().prefill(prompts, counts, inputs)

    def prefill_chunk(self, chunk: Sequence[int], offset: int) -> torch.Tensor:
        self._send(PrefillChunk(list(chunk), offset))
        return super().prefill_chunk(chunk, offset)

    def stage_chunked(self, length: int, count: int) -> None:
        self._send(StageChunked(length, count))
        super().stage_chunked(length, count)

    def drop_chunk(self) -> None:
        self._send(DropChunk())
        super().drop_chunk()

    def join(self) -> None:
        self._send(Join())
        super().join()

    def discard(self) -> None:
        self._send(Discard())
        super().discard()

    def keep(self, indices: Sequence[int]) -> None:
        self._send(Keep(list(indices)))
        super().keep(indices)

    def decode(self, tokens: Sequence[int]) -> torch.Tensor:
        self._send(Decode(list(tokens)))
        return super().decode(tokens)


class ReplicatedPagedRunner(_ToFollowers, PagedRunner):
    """Rank 0's paged runner, replicated on the followers."""

    def __init__(self, model: Any, num_blocks: int, commands: Sequence[Any]) -> None:
        self._commands = commands
        super().__init__(model, num_blocks)

    def forward(self, entries: Sequence[tuple[Sequence[int], int, Sequence[int]]]) -> torch.Tensor:
        self._send(PagedForward([(list(blocks), start, list(tokens)) for blocks, start, tokens in entries]))
        return super().forward(entries)

    def copy_block(self, source: int, target: int) -> None:
        self._send(CopyBlock(source, target))
        super().copy_block(source, target)


def replay(runner: Any, message: ReplayCall) -> None:
    """Run one of rank 0's calls on this rank's runner; a message of any other type is a ``ProtocolError``."""
    match message:
        case Prefill(prompts, counts, inputs):
            runner.prefill(prompts, counts, inputs)
        case PrefillChunk(chunk, offset):
            runner.prefill_chunk(chunk, offset)
        case StageChunked(length, count):
            runner.stage_chunked(length, count)
        case DropChunk():
            runner.drop_chunk()
        case Join():
            runner.join()
        case Discard():
            runner.discard()
        case Keep(indices):
            runner.keep(indices)
        case Decode(tokens):
            runner.decode(tokens)
        case ScorePrompt(prompt, top_k):
            runner.score_prompt(prompt, top_k)
        case PagedForward(entries):
            runner.forward(entries)
        case CopyBlock(source, target):
            runner.copy_block(source, target)
        case _:
            raise ProtocolError(message)


def follow(runner: ModelRunner | PagedRunner, commands: Any, parent_alive: Callable[[], bool]) -> None:
    """A follower rank: replay rank 0's calls on this shard until told to stop, or until the HTTP process that
    started the ranks is gone. A call that fails here ends this rank (rank 0's next collective then fails, and
    the HTTP side, which watches every rank, replaces the model)."""
    with torch.inference_mode():
        while True:
            try:
                message: ToFollower = commands.get(timeout=1.0)
            except queue.Empty:
                if not parent_alive():
                    log.warning("tensor_parallel_parent_gone")
                    return
                continue
            if isinstance(message, StopReplay):
                return
            replay(runner, message)
