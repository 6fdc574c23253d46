"""What both sides of the engine agree on before it starts: how a model is loaded, the limits of its batch,
and the shape of load progress. Torch-free: the HTTP process builds these, the engine process reads them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

ProgressFn = Callable[[str, int | None, int | None], None]  # (stage, current, total)


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_batch_size: int = 32  # rows (choices) decoded together
    max_num_batched_tokens: int = 2048  # prompt tokens prefilled per step
    max_kv_tokens: int | None = None  # rows x cache width the running batch may hold
    max_queue: int = 256  # requests admitted but not yet running
    stream_interval: float = 0.0  # seconds between deliveries to the event loop (0: every step)


@dataclass(frozen=True, slots=True)
class LoadOptions:
    dtype: str = "auto"
    device: str = "auto"
    attn_implementation: str | None = None
    quantization: str | None = None
    trust_remote_code: bool = False
    max_model_len: int | None = None
    cpu_threads: int | None = None  # None: all cores but one, leaving one to the HTTP side
    log_setup: Callable[[], None] | None = None  # run first in the engine process (picklable)
    trace_steps: bool = False  # the engine process records what each step did (tracing is on)
    limits: BatchLimits = field(default_factory=BatchLimits)
