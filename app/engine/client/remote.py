"""``RemoteEngine``: the ``EngineClient`` of an engine running in its own process (app/engine/process/worker.py,
started as ``processes.py`` says).

The HTTP process keeps the tokenizer (templating) and admission; the engine process keeps the model,
the batching loop and detokenization. Events arrive once per step and are read on the event loop with
``add_reader``, so the HTTP side never shares a GIL with the torch work.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import socket
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import structlog

from app.engine.client import processes
from app.engine.client.admission import admit
from app.engine.client.request_stream import RequestStream
from app.engine.messages import (
    Abort,
    Events,
    FromEngine,
    Generate,
    LoadFailed,
    Progress,
    ProtocolError,
    Ready,
    Stop,
    ToEngine,
)
from app.engine.options import LoadOptions, ProgressFn, TensorParallelGroup
from app.engine.process.entry import serve, serve_follower
from app.engine.types import (
    EngineEvent,
    EngineHealth,
    EngineObserver,
    FinishEvent,
    GenerationRequest,
    ModelInfo,
    StepRecord,
)
from app.errors import ModelLoadFailed, ServiceUnavailable

log = structlog.get_logger(__name__)


class RemoteEngine:
    def __init__(
        self,
        process: BaseProcess,
        conn: Connection,
        *,
        info: ModelInfo,
        max_rows: int,
        options: LoadOptions,
        kv_blocks: tuple[int, int] = (0, 0),
        followers: Sequence[BaseProcess] = (),
    ) -> None:
        self._process, self._conn = process, conn
        self._followers = list(followers)  # the other ranks of a tensor-parallel model
        self.info, self._max_rows, self._limits = info, max_rows, options.limits
        self._kv_blocks, self._block_size = kv_blocks  # the paged pool's blocks and block size; 0: not paged
        self._send_lock = threading.Lock()
        self._streams: dict[str, RequestStream] = {}
        self._open: dict[str, set[int]] = {}  # choices not finished yet, per request
        self._unstarted: set[str] = set()  # admitted, no event yet: the waiting line
        self._running = 0
        self._kv_tokens = 0  # cache slots the running batch holds
        self._kv_counters = (0, 0, 0, 0)  # prefix-cache queries and hits (tokens), preemptions, live tokens
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure: str | None = None
        self._stopping = False
        self._sentinels: list[int] = []  # the processes' sentinels the loop watches (``watch_exit``)
        self._on_exit: Callable[[], None] | None = None
        self.observer: EngineObserver | None = None  # telemetry: sees every delivery, on the loop

    @classmethod
    def spawn(cls, folder: str, name: str, options: LoadOptions, progress: ProgressFn) -> RemoteEngine:
        """Start the engine process (and, for a tensor-parallel model, one process per further rank) and wait
        (blocking: call off the loop) until its model is ready."""
        group, followers = _start_followers(folder, name, options)
        parent, child = processes.CONTEXT.Pipe(duplex=True)
        process = processes.start(serve, (child, folder, name, options, group), name=f"engine[{name}]")
        child.close()
        try:
            ready = _wait_ready(parent, name, progress)
        except ModelLoadFailed:
            _stop([process, *followers], timeout=5)
            parent.close()
            raise
        kv_blocks = (ready.kv_blocks, ready.block_size)
        return cls(
            process,
            parent,
            info=ready.info,
            max_rows=ready.max_rows,
            options=options,
            kv_blocks=kv_blocks,
            followers=followers,
        )

    # -- EngineClient ---------------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> RequestStream:
        self.check_serving()
        vocab_size, waiting = self.info.vocab_size or 0, len(self._unstarted)
        admit(
            request,
            vocab_size=vocab_size,
            max_rows=self._max_rows,
            limits=self._limits,
            waiting=waiting,
            kv_blocks=(self._kv_blocks, self._block_size),
        )
        self._attach(asyncio.get_running_loop())
        rid, n = request.request_id, request.params.n
        stream = RequestStream(rid, n, self.abort)
        self._streams[rid], self._open[rid] = stream, set(range(n))
        self._unstarted.add(rid)
        self._send(Generate(request))
        return stream

    def check_serving(self) -> None:
        """A 503 with ``Retry-After`` once the engine process has stopped: the registry is replacing it."""
        if self._stopping or self._failure is not None or not self._process.is_alive():
            raise ServiceUnavailable(
                f"The model's inference process has stopped ({self._failure or 'shut down'}); retry shortly.",
                retry_after=5,
            )

    def abort(self, request_id: str) -> None:
        """Safe from any thread, also from a dropped stream's finaliser after the pipe has closed."""
        if request_id in self._open and self._failure is None:
            with contextlib.suppress(OSError, ValueError):
                self._send(Abort(request_id))

    def health(self) -> EngineHealth:
        alive = self._failure is None and all(p.is_alive() for p in (self._process, *self._followers))
        return EngineHealth(
            alive=alive,
            running=self._running,
            waiting=len(self._unstarted),
            detail=self._failure,
            kv_usage=self._kv_usage(),
            kv_capacity=self._kv_capacity,
            kv_blocks_used=self._kv_tokens // self._block_size if self._block_size else 0,
            kv_blocks_total=self._kv_blocks,
            prefix_cache_queries=self._kv_counters[0],
            prefix_cache_hits=self._kv_counters[1],
            preemptions=self._kv_counters[2],
            kv_live_tokens=self._kv_counters[3],
            prefix_caching=bool(self._kv_blocks) and self._limits.prefix_caching,
        )

    def watch_exit(self, on_exit: Callable[[], None]) -> None:
        """On the loop: call ``on_exit`` the moment one of the engine's processes ends (its sentinel turns
        readable), so health and readiness change at once rather than at the next poll. Not on shutdown."""
        loop = asyncio.get_running_loop()
        self._attach(loop)
        self._on_exit = on_exit
        self._sentinels = [process.sentinel for process in (self._process, *self._followers)]
        for sentinel in self._sentinels:
            contextvars.Context().run(loop.add_reader, sentinel, self._ended, "the inference process exited")

    def _ended(self, reason: str) -> None:
        """On the loop: the engine is gone (its pipe ended first, or its process's sentinel, or it broke the
        protocol): end what is open, then tell the watcher, once, unless this is a shutdown."""
        self._close_pipe(reason)
        on_exit, self._on_exit = self._on_exit, None
        if on_exit is not None and not self._stopping:
            on_exit()

    def _unwatch_exit(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            for sentinel in self._sentinels:
                with contextlib.suppress(OSError, ValueError):
                    self._loop.remove_reader(sentinel)
        self._sentinels = []

    @property
    def _kv_capacity(self) -> int:
        return self._kv_blocks * self._block_size or self._limits.max_kv_tokens or 0

    def _kv_usage(self) -> float:
        """The paged pool's blocks in use, or the padded batch's KV budget in use (``--max-kv-tokens``); without a
        budget, the share of the batch's rows in use."""
        if self._kv_blocks:
            return min(1.0, self._kv_tokens / self._kv_capacity)
        if self._limits.max_kv_tokens:
            return min(1.0, self._kv_tokens / self._limits.max_kv_tokens)
        return min(1.0, self._running / self._max_rows) if self._max_rows else 0.0

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the engine process; open requests finish as aborted."""
        self._stopping = True
        with contextlib.suppress(OSError, ValueError):
            self._send(Stop())
        _stop([self._process, *self._followers], timeout)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._close_pipe, "shut down")
        else:
            self._close_pipe("shut down")

    # -- the pipe -------------------------------------------------------------------------------
    def _send(self, message: ToEngine) -> None:
        with self._send_lock:
            self._conn.send(message)

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is not loop:
            self._loop = loop
            # in an empty context: the callback must not run in a copy of the first request's context
            contextvars.Context().run(loop.add_reader, self._conn.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        try:
            while self._conn.poll():
                message: FromEngine = self._conn.recv()
                if not isinstance(message, Events):
                    raise ProtocolError(message)
                self._running, self._kv_tokens = message.running, message.kv_tokens
                self._kv_counters = message.kv_counters
                for request_id, events in message.batch:
                    self._dispatch(request_id, events)
                if self.observer is not None:
                    self.observer.delivered(message.batch, [StepRecord._make(step) for step in message.steps])
        except (EOFError, OSError):
            self._ended("the inference process exited")
        except ProtocolError as exc:
            self._process.kill()
            self._ended(str(exc))

    def _dispatch(self, request_id: str, events: list[EngineEvent]) -> None:
        self._unstarted.discard(request_id)
        stream, open_choices = self._streams.get(request_id), self._open.get(request_id)
        if stream is None or open_choices is None:
            return
        stream.queue.put_nowait(events)
        open_choices.difference_update(e.index for e in events if isinstance(e, FinishEvent))
        if not open_choices:
            del self._streams[request_id], self._open[request_id]

    def _close_pipe(self, reason: str) -> None:
        """On the loop: stop reading, and end every open request (as aborted when stopping, else failed)."""
        if self._failure is None:
            self._failure = reason
            if not self._stopping:
                log.error("engine_process_died", reason=reason, exitcode=self._process.exitcode)
        if self._loop is not None:
            with contextlib.suppress(OSError, ValueError):
                self._loop.remove_reader(self._conn.fileno())
        self._unwatch_exit()
        self._conn.close()
        if not self._stopping:  # the other ranks cannot go on without rank 0
            _stop(self._followers, timeout=0)
        outcome = "abort" if self._stopping else "error"
        batch = []
        for request_id, open_choices in list(self._open.items()):
            events = [FinishEvent(request_id, outcome, 0, 0, error=reason, index=i) for i in sorted(open_choices)]
            self._streams[request_id].queue.put_nowait(events)
            batch.append((request_id, events))
        if self.observer is not None:
            self.observer.delivered(batch, [])
        self._streams.clear()
        self._open.clear()
        self._unstarted.clear()


def _start_followers(
    folder: str, name: str, options: LoadOptions
) -> tuple[TensorParallelGroup | None, list[BaseProcess]]:
    """The ranks after the first of a tensor-parallel model, started (none for one rank)."""
    size = options.tensor_parallel_size
    if size <= 1:
        return None, []
    with socket.socket() as sock:  # the group's rendezvous port, on loopback
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    group = TensorParallelGroup(size, port, tuple(processes.CONTEXT.Queue() for _ in range(size - 1)))
    followers = [
        processes.start(serve_follower, (rank, group, folder, name, options), name=f"engine[{name}]#{rank}")
        for rank in range(1, size)
    ]
    return group, followers


def _wait_ready(conn: Connection, name: str, progress: ProgressFn) -> Ready:
    """Relay load progress until the engine process is ready; ``ModelLoadFailed`` when it is not."""
    while True:
        try:
            message: FromEngine = conn.recv()
        except EOFError as exc:
            raise ModelLoadFailed(f"The engine process for `{name}` exited while loading.") from exc
        match message:
            case Progress(stage, current, total):
                progress(stage, current, total)
            case Ready():
                return message
            case LoadFailed(reason):
                raise ModelLoadFailed(f"Could not load `{name}`: {reason}")
            case _:
                raise ModelLoadFailed(f"Could not load `{name}`: {ProtocolError(message)}")


def _stop(processes: Sequence[BaseProcess], timeout: float) -> None:
    """Wait up to ``timeout`` seconds for each process to end, then kill what is left."""
    for process in processes:
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join(5)
