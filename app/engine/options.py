"""What both sides of the engine agree on before it starts: how a model is loaded, the limits of its batch,
and the shape of load progress. Torch-free: the HTTP process builds these, the engine process reads them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ProgressFn = Callable[[str, int | None, int | None], None]  # (stage, current, total)


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_batch_size: int = 32  # rows (choices) decoded together
    max_num_batched_tokens: int = 2048  # tokens per step (decode rows and prompt chunks)
    cpu_prefill_s: float = 0.0  # CPU, paged: a step's prompt tokens cut to about this much measured work (0: off)
    max_kv_tokens: int | None = None  # tokens the KV cache holds (paged: the pool; padded: rows x cache width)
    gpu_memory_utilization: float = 0.9  # CUDA, without max_kv_tokens: share of memory for weights and the pool
    prefix_caching: bool = True  # paged models reuse cached prompt prefixes
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
    tensor_parallel_size: int = 1  # engine processes (ranks) one model is sharded across
    limits: BatchLimits = field(default_factory=BatchLimits)


@dataclass(frozen=True, slots=True)
class TensorParallelGroup:
    """The ranks of one tensor-parallel model, made by the HTTP process when it spawns them: where they meet
    (torch.distributed's rendezvous on 127.0.0.1) and, per follower rank (1, 2, ...), the queue on which rank 0
    sends the model runner's calls for it to replay."""

    world_size: int
    port: int
    commands: tuple[Any, ...]  # multiprocessing queues, one per follower rank
