"""How the HTTP side starts engine processes.

Where the platform has it, through a forkserver: one process that imports the engine's modules (torch,
transformers, the engine) once; each engine process is then a fork of it, single-threaded and with no CUDA
state, as a spawned interpreter would be, without paying those seconds of imports again. ``prestart`` starts it
early, so its imports overlap the HTTP side's own start-up. Elsewhere, a spawned interpreter.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from multiprocessing import forkserver
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from app.engine.process.entry import ENGINE_MODULES

_FORKSERVER = "forkserver" in multiprocessing.get_all_start_methods()
CONTEXT: BaseContext = multiprocessing.get_context("forkserver" if _FORKSERVER else "spawn")
if _FORKSERVER:
    forkserver.set_forkserver_preload(list(ENGINE_MODULES))


def prestart() -> None:
    """Start the forkserver now, if there is one: it imports the engine in its own process meanwhile."""
    if _FORKSERVER:
        forkserver.ensure_running()


def start(target: Callable[..., None], args: tuple[Any, ...], name: str) -> BaseProcess:
    """Start ``target(environ, *args)`` (one of ``app.engine.process.entry``'s) in a new daemon process, with this
    process's environment as it is now."""
    process = CONTEXT.Process(target=target, args=(dict(os.environ), *args), name=name, daemon=True)
    process.start()
    return process
