"""What the batching loop keeps per request and per row (choice) being decoded."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from app.engine.process.detokenizer import TextAssembler
from app.engine.process.sampler import SequenceSampling
from app.engine.types import EngineEvent, GenerationRequest, PromptLogprob, RequestTiming


@dataclass(eq=False)
class KVSeq:
    """A sequence in the paged KV cache: its tokens, the blocks holding them, how many are computed (in the cache),
    the content hashes of its full blocks so far, and those of the full blocks of what it must prefill (its prompt,
    or everything when it is computed again after a preemption)."""

    tokens: list[int]
    blocks: list[int] = field(default_factory=list)
    computed: int = 0
    hashes: list[bytes] = field(default_factory=list)
    chain: list[bytes] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return len(self.tokens) - self.computed


@dataclass(eq=False)
class EngineRequest:
    request: GenerationRequest
    open: int  # choices not finished yet
    prompt: list[int]
    done: int = 0  # prompt tokens already prefilled (chunked prefill)
    arrived: int = field(default_factory=time.time_ns)
    scheduled: int = 0  # when its prefill started (time.time_ns)
    first_token: int = 0  # when its first token was sampled
    prompt_logprobs: tuple[PromptLogprob, ...] | None = None  # when asked for: scored as it arrived
    seq: KVSeq | None = None  # its prompt in the paged cache, while being prefilled
    cached: int = 0  # prompt tokens found in the prefix cache

    @property
    def id(self) -> str:
        return self.request.request_id

    def timing(self) -> RequestTiming:
        return RequestTiming(self.arrived, self.scheduled, self.first_token, time.time_ns())


@dataclass(eq=False)
class Row:
    """One choice being decoded: a row of the running batch."""

    owner: EngineRequest
    index: int
    sampling: SequenceSampling
    text: TextAssembler
    token: int = 0
    produced: int = 0
    events: list[EngineEvent] = field(default_factory=list)
    prompt_logprobs_sent: bool = False  # the request's prompt logprobs ride on the choice's first event
    seq: KVSeq | None = None  # its tokens in the paged cache (paged models only)
