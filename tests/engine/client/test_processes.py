"""How engine processes start: forks of a forkserver that imported the engine once, each given the environment
its starter has at that moment (not the forkserver's, which is older)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from multiprocessing.connection import Connection

import pytest

from app.engine.client import processes
from app.engine.process.entry import adopt_environment


def _probe(environ: Mapping[str, str], conn: Connection) -> None:
    """A start target (so at module level): reports what the new process has, before importing anything."""
    preloaded = "torch" in sys.modules and "app.engine.process.worker" in sys.modules
    adopt_environment(environ)
    conn.send((preloaded, os.environ.get("HFSERVE_PROBE"), os.getpid()))
    conn.close()


@pytest.mark.skipif(sys.platform == "win32", reason="no forkserver on Windows: engine processes are spawned there")
def test_an_engine_process_is_a_preloaded_fork_with_the_starters_environment_of_now(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    processes.prestart()
    reports = []
    for mark in ("first", "second"):  # the forkserver is already running for the second: it has neither value
        monkeypatch.setenv("HFSERVE_PROBE", mark)
        parent, child = processes.CONTEXT.Pipe(duplex=False)
        process = processes.start(_probe, (child,), name=f"probe-{mark}")
        child.close()
        assert parent.poll(60), "the process never reported"
        reports.append(parent.recv())
        process.join(10)
        assert process.exitcode == 0
    (preloaded, first, pid1), (_, second, pid2) = reports
    assert preloaded, "the engine's modules were imported again: the forkserver did not preload them"
    assert (first, second) == ("first", "second")
    assert pid1 != pid2 != os.getpid()


def test_the_http_side_names_the_engine_without_importing_it() -> None:
    """The engine's modules are the forkserver's to import; the HTTP side names its targets only."""
    probe = "import sys, app.engine.client.remote; print('app.engine.process.worker' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"
