"""A real Redis server on 127.0.0.1 for the tests, started and stopped by them (Debian's `redis-server`,
which `make test` installs through scripts/test-deps.sh). Without the binary the tests that need it fail,
unless HFSERVE_ALLOW_NO_REDIS=1 lets them skip."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.server import free_port


class RedisServer:
    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc, self.port = proc, port
        self.url = f"redis://127.0.0.1:{port}/0"

    def pause(self) -> None:
        """Stop answering (SIGSTOP) without closing connections, as a hung server would."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)


def redis_binary() -> str:
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        if os.environ.get("HFSERVE_ALLOW_NO_REDIS") == "1":
            pytest.skip("no redis-server (scripts/test-deps.sh installs it)")
        pytest.fail("no redis-server: run scripts/test-deps.sh (make test does)")
    return binary


@contextmanager
def run_redis(folder: Path) -> Iterator[RedisServer]:
    port = free_port()
    command = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(folder), "--daemonize", "no", "--protected-mode", "yes"]
    with open(folder / "redis.log", "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = RedisServer(proc, port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {(folder / 'redis.log').read_text()}")
            time.sleep(0.05)
        yield server
    finally:
        server.resume()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
