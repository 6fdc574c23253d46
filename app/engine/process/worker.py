"""The engine process: loads the weights and runs the batching loop, away from the HTTP process's GIL.

It talks to its ``RemoteEngine`` over one duplex pipe, in the messages of ``app.engine.messages``: it reports
``Progress`` while loading, then ``Ready`` or ``LoadFailed``; then it serves ``Generate`` and ``Abort`` until
``Stop`` (or until the HTTP process is gone), while the engine's ``Outbox`` sends ``Events``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from multiprocessing.connection import Connection

from app.engine.messages import Abort, FromEngine, Generate, LoadFailed, Progress, ProtocolError, Ready, Stop, ToEngine
from app.engine.options import LoadOptions
from app.engine.process.batched_engine import BatchedEngine
from app.engine.process.delivery import Outbox
from app.engine.process.speech import SpeechEngine
from app.engine.process.weights import load_weights

Engine = BatchedEngine | SpeechEngine


def serve(conn: Connection, folder: str, name: str, options: LoadOptions) -> None:
    """Entry point of the engine process (``multiprocessing`` spawn target)."""
    if options.log_setup is not None:
        options.log_setup()
    send_lock = threading.Lock()

    def send(message: FromEngine) -> None:
        with send_lock:
            conn.send(message)

    engine = _start(send, folder, name, options)
    if engine is None:
        return
    try:
        serve_requests(conn, engine)
    except (EOFError, OSError):  # the HTTP process is gone
        pass
    finally:
        engine.shutdown()


def _start(send: Callable[[FromEngine], None], folder: str, name: str, options: LoadOptions) -> Engine | None:
    """Load the model and start its engine; None (reported as ``LoadFailed``) when that fails."""
    try:
        model, tokenizer, info = load_weights(folder, name, options, lambda *p: send(Progress(*p)))
        outbox = Outbox(send, options.limits.stream_interval)
        engine: Engine
        if info.task == "speech-to-text":
            engine = SpeechEngine(model, tokenizer, name=name, outbox=outbox)
        else:
            engine = BatchedEngine(
                model, tokenizer, name=name, limits=options.limits, outbox=outbox, trace_steps=options.trace_steps
            )
    except Exception as exc:  # reported to the loading request, which fails with it
        send(LoadFailed(f"{type(exc).__name__}: {exc}"))
        return None
    send(Ready(info, engine.max_rows))
    return engine


def serve_requests(conn: Connection, engine: Engine) -> None:
    """Hand each request and abort to ``engine`` until ``Stop``; a message of any other type is an error."""
    while True:
        message: ToEngine = conn.recv()
        match message:
            case Generate(request):
                engine.submit(request)
            case Abort(request_id):
                engine.abort(request_id)
            case Stop():
                return
            case _:
                raise ProtocolError(message)
