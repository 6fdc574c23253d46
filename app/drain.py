"""Graceful stop on SIGTERM, across Granian's two processes.

Kubernetes (and ``docker stop``) sends SIGTERM and only then takes the pod out of its endpoints, so for a
few seconds new requests still arrive. Granian alone would close its listener at once and those requests
would see "connection refused", which a load balancer cannot tell from a crash. So on SIGTERM:

1. the Granian main process (``DrainingServer``) sends ``DRAIN_SIGNAL`` to its workers and waits
   ``--drain-grace`` seconds with the listener open;
2. the worker (``on_drain_signal``, installed by the app's lifespan) turns ``/ready`` to 503 at once and
   refuses new generation with a 503 and ``Retry-After``, while in-flight requests go on;
3. after the grace the main process stops Granian as usual: the listener closes, Granian waits for the
   in-flight requests to finish, and the app's shutdown unloads the models.

SIGINT (Ctrl-C) and a second SIGTERM stop at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import structlog
from granian.server import MPServer

log = structlog.get_logger(__name__)
DRAIN_SIGNAL = signal.SIGUSR1


class DrainingServer(MPServer):
    """Granian's multi-process server with a drain period between SIGTERM and the listener closing."""

    def __init__(self, *args: Any, drain_grace: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._drain_grace = drain_grace
        self._drain_timer: threading.Timer | None = None

    def signal_handler_interrupt(self, signum: int | None = None, *args: Any, **kwargs: Any) -> None:
        if signum != signal.SIGTERM or self._drain_grace <= 0 or self._drain_timer is not None:
            super().signal_handler_interrupt()
            return
        log.info("drain_started", grace_seconds=self._drain_grace)
        for worker in list(self.wrks):
            pid = worker.inner.pid
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, DRAIN_SIGNAL)
        self._drain_timer = threading.Timer(self._drain_grace, super().signal_handler_interrupt)
        self._drain_timer.daemon = True
        self._drain_timer.start()


def on_drain_signal(start_draining: Callable[[], None]) -> None:
    """In the worker, on its event loop: call ``start_draining`` when the main process says to drain."""
    loop = asyncio.get_running_loop()

    def drain() -> None:
        log.info("draining", detail="not ready; new requests get 503 while in-flight ones finish")
        start_draining()

    try:
        loop.add_signal_handler(DRAIN_SIGNAL, drain)
    except (RuntimeError, ValueError):  # the loop is not on the main thread: a plain handler hands it over
        try:
            signal.signal(DRAIN_SIGNAL, lambda *_: loop.call_soon_threadsafe(drain))
        except ValueError:  # not even on the main thread (an in-process test client): no Granian to drain
            log.debug("drain_signal_not_installed")
