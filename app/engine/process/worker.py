"""The engine process: loads the weights and runs the batching loop, away from the HTTP process's GIL.

It talks to its ``RemoteEngine`` over one duplex pipe, in the messages of ``app.engine.messages``: it reports
``Progress`` while loading, then ``Ready`` or ``LoadFailed``; then it serves ``Generate`` and ``Abort`` until
``Stop`` (or until the HTTP process is gone), while the engine's ``Outbox`` sends ``Events``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import structlog

from app.engine.architectures import POOLING_TASKS, TEXT
from app.engine.messages import (
    Abort,
    FromEngine,
    Generate,
    LoadFailed,
    Pool,
    Progress,
    ProtocolError,
    Ready,
    Stop,
    ToEngine,
)
from app.engine.options import LoadOptions, TensorParallelGroup
from app.engine.process.batched_engine import BatchedEngine
from app.engine.process.model_runner import ModelRunner, pad_id
from app.engine.process.outbox import Outbox
from app.engine.process.paged_engine import PagedEngine
from app.engine.process.paged_runner import PagedRunner, paged_runner
from app.engine.process.pooling import PoolingEngine, make_pooler, pad_token
from app.engine.process.speech import SpeechEngine
from app.engine.process.tensor_parallel import (
    ReplicatedPagedRunner,
    ReplicatedRunner,
    follow,
    join_group,
    leave_group,
)
from app.engine.process.weights import load_weights
from app.engine.types import ModelInfo

log = structlog.get_logger(__name__)

Engine = BatchedEngine | SpeechEngine | PoolingEngine


def serve(
    conn: Connection, folder: str, name: str, options: LoadOptions, group: TensorParallelGroup | None = None
) -> None:
    """Entry point of the engine process (through ``entry.serve``); with ``group``, rank 0 of a
    tensor-parallel model."""
    if options.log_setup is not None:
        options.log_setup()
    send_lock = threading.Lock()

    def send(message: FromEngine) -> None:
        with send_lock:
            conn.send(message)

    engine = _start(send, folder, name, options, group)
    if engine is None:
        return
    try:
        serve_requests(conn, engine)
    except (EOFError, OSError):  # the HTTP process is gone
        pass
    finally:
        engine.shutdown()
        leave_group()


def _start(
    send: Callable[[FromEngine], None], folder: str, name: str, options: LoadOptions, group: TensorParallelGroup | None
) -> Engine | None:
    """Load the model and start its engine; None (reported as ``LoadFailed``) when that fails."""
    try:
        device = join_group(0, group, options.device) if group else None
        model, tokenizer, info = load_weights(folder, name, options, lambda *p: send(Progress(*p)), device=device)
        outbox = Outbox(send, options.limits.stream_interval)
        engine: Engine
        if info.task in POOLING_TASKS:
            if group is not None:
                raise ValueError(f"tensor parallelism serves generative models, not {info.task} models")
            pooler, _ = make_pooler(info.task, folder, model.config)
            pad = pad_token(tokenizer)
            engine = PoolingEngine(model, pooler, name=name, pad_id=pad, limits=options.limits, send=send)
        elif info.task == "speech-to-text":
            if group is not None:
                raise ValueError("tensor parallelism serves text and multimodal chat models, not speech-to-text")
            engine = SpeechEngine(model, tokenizer, name=name, outbox=outbox)
        else:
            engine = _batched_engine(model, tokenizer, info, name, options, outbox, group)
    except Exception as exc:  # reported to the loading request, which fails with it
        send(LoadFailed(f"{type(exc).__name__}: {exc}"))
        return None
    blocks, size = (engine.kv_stats[1], engine.block_size) if isinstance(engine, PagedEngine) else (0, 0)
    send(Ready(info, engine.max_rows, blocks, size))
    return engine


def _batched_engine(
    model: Any,
    tokenizer: Any,
    info: ModelInfo,
    name: str,
    options: LoadOptions,
    outbox: Outbox,
    group: TensorParallelGroup | None,
) -> BatchedEngine:
    """A ``PagedEngine`` where the model's cache can be paged, else the padded ``BatchedEngine``."""
    kwargs = {"name": name, "limits": options.limits, "outbox": outbox, "trace_steps": options.trace_steps}
    make = (lambda m, blocks: ReplicatedPagedRunner(m, blocks, group.commands)) if group else None
    paged = _paged(model, info, options, make)
    if paged is not None:
        return PagedEngine(paged, tokenizer, prefix_caching=options.limits.prefix_caching, on_death=_exit, **kwargs)
    pad = pad_id(tokenizer)
    runner = ReplicatedRunner(model, pad, group.commands) if group else ModelRunner(model, pad)
    return BatchedEngine(runner, tokenizer, on_death=_exit, **kwargs)


def _paged(model: Any, info: ModelInfo, options: LoadOptions, make: Any = None) -> PagedRunner | None:
    ranks = options.tensor_parallel_size
    media = info.task != TEXT
    return paged_runner(model, options.limits, media=media, context=info.max_context, ranks=ranks, make=make)


def serve_follower(rank: int, group: TensorParallelGroup, folder: str, name: str, options: LoadOptions) -> None:
    """Entry point of a follower rank (1, 2, ...) of a tensor-parallel model (through ``entry.serve_follower``):
    load this rank's shard, then replay rank 0's model-runner calls on it."""
    if options.log_setup is not None:
        options.log_setup()
    parent = os.getppid()
    try:
        device = join_group(rank, group, options.device)
        model, tokenizer, info = load_weights(folder, name, options, lambda *_: None, device=device)
        runner = _paged(model, info, options) or ModelRunner(model, pad_id(tokenizer))
        follow(runner, group.commands[rank - 1], lambda: os.getppid() == parent)
    except Exception:
        log.exception("tensor_parallel_rank_failed", rank=rank)
        raise
    finally:
        leave_group()


def _exit(reason: str) -> None:
    """The batching loop died: end the process (its requests already got their error), so the HTTP side sees
    the pipe close, reports the engine dead and replaces the model; the request loop would wait forever."""
    log.error("engine_process_exiting", reason=reason)
    os._exit(70)


def serve_requests(conn: Connection, engine: Engine) -> None:
    """Hand each request and abort to ``engine`` until ``Stop``; a message of any other type is an error."""
    while True:
        message: ToEngine = conn.recv()
        match message:
            case Generate(request) if not isinstance(engine, PoolingEngine):
                engine.submit(request)
            case Pool(requests) if isinstance(engine, PoolingEngine):
                engine.pool(requests)
            case Abort(request_id):
                engine.abort(request_id)
            case Stop():
                return
            case _:
                raise ProtocolError(message)
