"""Everything that crosses the pipe between the HTTP process and an engine process, one type per message.

HTTP process -> engine process: ``Generate``, ``Abort``, ``Stop``. Engine process -> HTTP process: ``Progress``
while loading, then ``Ready`` or ``LoadFailed``, then one ``Events`` per delivery. A pooling engine (embed and
score models) takes ``Pool`` in place of ``Generate`` and answers with ``Pooled`` in place of ``Events``.
Between the ranks of a tensor-parallel model, rank 0 -> each further rank: one ``ReplayCall`` per model-runner call,
then ``StopReplay``. Every side matches messages by type; a message of any other type is a ``ProtocolError``.

The messages are slotted but not frozen dataclasses: a frozen slotted dataclass pickles through Python calls
(its generated ``__getstate__``/``__setstate__``), a plain slotted one entirely in C, and ``Events`` crosses
the pipe once per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.engine.types import EngineEvent, GenerationRequest, ModelInfo, PoolingRequest, PoolingResult

# A StepRecord as a plain tuple (StepRecord._make turns it back): a named tuple pickles through Python calls.
StepTuple = tuple[int, int, tuple[str, ...], int, tuple[str, ...]]


class ProtocolError(Exception):
    """A message neither side of the pipe sends."""

    def __init__(self, message: object) -> None:
        super().__init__(f"unexpected message on the engine pipe: {type(message).__name__}")


@dataclass(slots=True)
class Generate:
    request: GenerationRequest


@dataclass(slots=True)
class Abort:
    request_id: str


@dataclass(slots=True)
class Stop:
    pass


@dataclass(slots=True)
class Progress:
    stage: str
    current: int | None
    total: int | None


@dataclass(slots=True)
class Ready:
    info: ModelInfo
    max_rows: int  # choices one request may ask for (1 for models decoded one row at a time)
    kv_blocks: int = 0  # blocks of the paged KV cache (0: the model's cache is not paged)
    block_size: int = 0


@dataclass(slots=True)
class LoadFailed:
    message: str


@dataclass(slots=True)
class Events:
    """One delivery: each request's events since the last one, the rows running after it and the KV-cache slots
    they hold (rows x cache width; paged: blocks in use x block size), the paged cache's counters, and the records
    of the steps since the last delivery (empty unless tracing is on). The HTTP side counts the waiting line
    itself: it knows the requests still in the pipe."""

    batch: list[tuple[str, list[EngineEvent]]]
    running: int
    kv_tokens: int
    steps: list[StepTuple]
    # paged cache: prefix-cache queries, hits (tokens) and preemptions since start; tokens the live sequences hold
    kv_counters: tuple[int, int, int, int] = (0, 0, 0, 0)


@dataclass(slots=True)
class Pool:
    """The inputs of one API request, admitted together; the engine batches them with whatever else waits."""

    requests: list[PoolingRequest]


@dataclass(slots=True)
class Pooled:
    """Results of one forward pass; ``running``: inputs the engine holds after it (in its queue or batch)."""

    results: list[PoolingResult]
    running: int


# Rank 0 -> the further ranks of a tensor-parallel model: the model runner's calls, replayed in order.


@dataclass(slots=True)
class Prefill:
    prompts: list[list[int]]
    counts: list[int]
    inputs: dict[str, Any] | None  # a single prompt's media arrays


@dataclass(slots=True)
class PrefillChunk:
    chunk: list[int]
    offset: int


@dataclass(slots=True)
class StageChunked:
    length: int
    count: int


@dataclass(slots=True)
class DropChunk:
    pass


@dataclass(slots=True)
class Join:
    pass


@dataclass(slots=True)
class Discard:
    pass


@dataclass(slots=True)
class Keep:
    indices: list[int]


@dataclass(slots=True)
class Decode:
    tokens: list[int]


@dataclass(slots=True)
class ScorePrompt:
    prompt: list[int]
    top_k: int


@dataclass(slots=True)
class PagedForward:
    entries: list[tuple[list[int], int, list[int]]]  # (block table, cached tokens, new tokens) per sequence


@dataclass(slots=True)
class CopyBlock:
    source: int
    target: int


@dataclass(slots=True)
class StopReplay:
    pass


ToEngine = Generate | Pool | Abort | Stop
FromEngine = Progress | Ready | LoadFailed | Events | Pooled
ReplayCall = (
    Prefill
    | PrefillChunk
    | StageChunked
    | DropChunk
    | Join
    | Discard
    | Keep
    | Decode
    | ScorePrompt
    | PagedForward
    | CopyBlock
)
ToFollower = ReplayCall | StopReplay
