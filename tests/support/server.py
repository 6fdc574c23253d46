"""A real ``hfserve serve`` process on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(hf_home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HFSERVE_", "HF_"))}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", TOKENIZERS_PARALLELISM="false")
    env.update(HFSERVE_DRAIN_GRACE="0")  # test servers stop at once; the drain's own tests set a grace
    env.update(extra or {})
    return env


class ServerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.proc, self.port, self.log_path = proc, port, log_path
        self.url = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.url}/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not healthy after {timeout}s:\n{self.log()[-4000:]}")

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(f"{self.url}/ready", timeout=2.0).status_code == 200:
                return
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.log()[-4000:]}")

    def stop(self) -> int:
        """SIGTERM the process we started (by pid) and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


@contextmanager
def run_server(
    hf_home: Path,
    log_dir: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    wait: str = "healthy",
) -> Iterator[ServerProcess]:
    """Start ``python -m app serve --host 127.0.0.1 --port <free> *args``; stop it afterwards."""
    port = free_port()
    log_path = log_dir / f"server-{port}.log"
    command: Sequence[str] = [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=server_env(hf_home, env), stdout=log_file, stderr=subprocess.STDOUT
        )
    server = ServerProcess(proc, port, log_path)
    try:
        server.wait_healthy()
        if wait == "ready":
            server.wait_ready()
        yield server
    finally:
        server.stop()
