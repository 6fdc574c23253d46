"""The engine process: loads the weights and runs the batching loop, away from the HTTP process's GIL.

It talks to its ``RemoteEngine`` over one duplex pipe. In: ``("generate", GenerationRequest)``,
``("abort", request_id)``, ``("stop",)``. Out: ``("progress", stage, current, total)`` while loading,
then ``("ready", ModelInfo, max_rows)`` or ``("error", message)``, then one ``("events", batch, running,
waiting, steps)`` per delivery, where ``batch`` is ``[(request_id, [events...]), ...]`` and ``steps`` the
``StepRecord``s of the steps since the last delivery as plain tuples (empty unless tracing is on).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from app.engine.stream import Delivery
from app.engine.types import EngineEvent


class _Handle:
    """Stands in for a request's stream inside the engine process: only its id crosses the pipe."""

    __slots__ = ("request_id",)

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id


class PipeDelivery(Delivery):
    """Sends each step's events down the pipe from the engine thread (no event loop to wake here)."""

    def __init__(self, conn: Connection, lock: threading.Lock, interval: float) -> None:
        super().__init__(interval)
        self._conn, self._send_lock = conn, lock
        self.stats: Callable[[], tuple[int, int]] = lambda: (0, 0)

    def flush(self, *, busy: bool) -> bool:
        if not self._outbox:
            return True
        if not self._due(busy):
            return False
        batch: list[tuple[str, list[EngineEvent]]] = [(h.request_id, list(events)) for h, events in self._outbox]
        self._outbox.clear()
        steps = [tuple(step) for step in self.steps]  # plain: a named tuple pickles through Python calls
        self.steps.clear()  # the step log keeps appending to this very list
        running, waiting = self.stats()
        with self._send_lock:
            self._conn.send(("events", batch, running, waiting, steps))
        return True


def serve(conn: Connection, folder: str, name: str, options: Any, log_setup: Callable[[], None] | None) -> None:
    """Entry point of the engine process (``multiprocessing`` spawn target)."""
    from app.engine.loader import load_weights
    from app.engine.runner import BatchedEngine
    from app.engine.speech import SpeechEngine

    if log_setup is not None:
        log_setup()
    send_lock = threading.Lock()

    def progress(stage: str, current: int | None, total: int | None) -> None:
        with send_lock:
            conn.send(("progress", stage, current, total))

    try:
        model, tokenizer, info = load_weights(folder, name, options, progress)
        delivery = PipeDelivery(conn, send_lock, options.limits.stream_interval)
        if info.task == "speech-to-text":
            engine = SpeechEngine(model, tokenizer, name=name, limits=options.limits, delivery=delivery)
        else:
            engine = BatchedEngine(
                model, tokenizer, name=name, limits=options.limits, delivery=delivery, trace_steps=options.trace_steps
            )
    except Exception as exc:  # reported to the loading request, which fails with it
        with send_lock:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    delivery.stats = lambda: (engine.health().running, engine.health().waiting)
    with send_lock:
        conn.send(("ready", info, engine.max_rows))
    try:
        while True:
            message = conn.recv()
            if message[0] == "generate":
                engine.submit(message[1], _Handle(message[1].request_id))
            elif message[0] == "abort":
                engine.abort(message[1])
            else:
                break
    except (EOFError, OSError):  # the HTTP process is gone
        pass
    finally:
        engine.shutdown()
