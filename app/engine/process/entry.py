"""The engine process's start targets, importable without torch so the HTTP side can name them.

Each takes the environment of the process that started it (a forkserver's child inherits the forkserver's,
which is older), then imports the engine (``worker.py``) and runs it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

ENGINE_MODULES = ("app.engine.process.worker",)  # what a forkserver imports once for all its children


def serve(environ: Mapping[str, str], *args: Any) -> None:
    """The engine process (rank 0): ``worker.serve(*args)``."""
    adopt_environment(environ)
    from app.engine.process.worker import serve as run

    run(*args)


def serve_follower(environ: Mapping[str, str], *args: Any) -> None:
    """A further rank of a tensor-parallel model: ``worker.serve_follower(*args)``."""
    adopt_environment(environ)
    from app.engine.process.worker import serve_follower as run

    run(*args)


def adopt_environment(environ: Mapping[str, str]) -> None:
    """This process's environment becomes ``environ`` (what its starter's was when it started it)."""
    os.environ.clear()
    os.environ.update(environ)
