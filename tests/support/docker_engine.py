"""A Docker engine for the deployment tests, and the local Debian base image they build on.

Which engine, in order:

1. ``DOCKER_HOST`` from the environment, when it answers (never stopped by us);
2. a private ``dockerd`` we start, when we are root and it is installed: no iptables, no bridge, its own
   exec root and unix socket under /tmp, and a data root in the machine-wide test cache (so image
   layers survive from one run to the next). It is stopped by its pid when the tests end;
3. ``/var/run/docker.sock``, when it answers.

Otherwise the caller skips with the reason returned. ``scripts/deploy-tools.sh`` installs the engine.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

BASE_IMAGE_TAG = "local/debian:bookworm"
SYSTEM_SOCKET = "unix:///var/run/docker.sock"


def cache_dir() -> Path:
    """Machine-wide cache of the deployment tests (base image tarball, engine data root)."""
    if explicit := os.environ.get("HFSERVE_DEPLOY_CACHE"):
        path = Path(explicit)
    else:
        path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hfserve-deploy-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path


def answers(docker_host: str) -> str | None:
    """None when the engine at ``docker_host`` answers a ping, else why not."""
    import docker

    try:
        client = docker.DockerClient(base_url=docker_host, timeout=10)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@dataclass
class DockerEngine:
    """An engine the tests can use; ``proc`` is set only when we started it (and so must stop it)."""

    host: str
    description: str
    proc: subprocess.Popen[bytes] | None = None
    exec_root: Path | None = None
    log_path: Path | None = None
    _held: list[IO[str]] = field(default_factory=list)
    _scratch: list[Path] = field(default_factory=list)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path else ""

    def stop(self) -> None:
        """SIGTERM the dockerd we started (by its pid), wait, then clean its private folders."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for held in self._held:
            held.close()  # releases the data-root lock
        if self.exec_root is not None:
            _unmount_under(self.exec_root)
        for path in [*self._scratch, *([self.exec_root] if self.exec_root else [])]:
            shutil.rmtree(path, ignore_errors=True)


def _unmount_under(root: Path) -> None:
    """dockerd leaves its bind mount of the host network namespace (exec-root/netns/default) behind."""
    with contextlib.suppress(OSError):
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        for point in sorted((m for m in mounts if m.startswith(f"{root}/")), key=len, reverse=True):
            subprocess.run(["umount", point], capture_output=True, timeout=30)


def _lock(path: Path) -> IO[str] | None:
    handle = path.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _start_private(log_dir: Path) -> tuple[DockerEngine | None, str]:
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        return None, "dockerd is not installed (run scripts/deploy-tools.sh as root)"
    if os.geteuid() != 0:
        return None, "not root, so a private dockerd cannot be started"
    exec_root = Path(tempfile.mkdtemp(prefix="hfs-dockerd-", dir="/tmp"))  # short: socket paths are limited
    engine = DockerEngine(host=f"unix://{exec_root}/docker.sock", description="", exec_root=exec_root)
    shared = cache_dir() / "docker-data"
    held = _lock(cache_dir() / "docker-data.lock")
    if held is not None:
        data_root = shared
        engine._held.append(held)
    else:  # another run holds the shared data root: use a throwaway one
        data_root = Path(tempfile.mkdtemp(prefix="docker-data-", dir=cache_dir()))
        engine._scratch.append(data_root)
    engine.log_path = log_dir / "dockerd.log"
    command = [
        dockerd,
        "--iptables=false",
        "--ip-forward=false",
        "--ip-masq=false",
        "--bridge=none",
        f"--data-root={data_root}",
        f"--exec-root={exec_root}/exec",
        f"--pidfile={exec_root}/docker.pid",
        f"--host={engine.host}",
    ]
    with engine.log_path.open("wb") as log:
        engine.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    engine.description = f"private dockerd pid {engine.proc.pid} at {engine.host}, data root {data_root}"
    deadline = time.monotonic() + 60
    why = "not started"
    while time.monotonic() < deadline:
        if engine.proc.poll() is not None:
            engine.stop()
            return None, f"dockerd exited with {engine.proc.returncode}: {engine.log_tail(1500)}"
        why = answers(engine.host)
        if why is None:
            return engine, ""
        time.sleep(0.3)
    engine.stop()
    return None, f"dockerd did not answer within 60 s ({why}): {engine.log_tail(1500)}"


def acquire_engine(log_dir: Path) -> tuple[DockerEngine | None, str]:
    """An engine to use, or None and the reason there is none."""
    reasons = []
    if host := os.environ.get("DOCKER_HOST"):
        why = answers(host)
        if why is None:
            return DockerEngine(host=host, description=f"DOCKER_HOST={host}"), ""
        reasons.append(f"DOCKER_HOST={host} does not answer ({why})")
    else:
        engine, why = _start_private(log_dir)
        if engine is not None:
            return engine, ""
        reasons.append(why)
        if Path(SYSTEM_SOCKET.removeprefix("unix://")).exists():
            why = answers(SYSTEM_SOCKET)
            if why is None:
                return DockerEngine(host=SYSTEM_SOCKET, description=f"system engine {SYSTEM_SOCKET}"), ""
            reasons.append(f"{SYSTEM_SOCKET} does not answer ({why})")
    return None, "no Docker engine: " + "; ".join(reasons)


# -- the local base image ------------------------------------------------------------------------------


def debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (the only one reachable), for debootstrap."""
    if mirror := os.environ.get("HFSERVE_DEBIAN_MIRROR"):
        return mirror
    for source in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        with contextlib.suppress(OSError):
            text = source.read_text()
            for match in re.finditer(r"(?:^deb\s+(?:\[[^]]*\]\s+)?|^URIs:\s*)(\S+/debian)/?\s", text, re.MULTILINE):
                return match.group(1)
    return "http://deb.debian.org/debian"


def _make_rootfs_tarball(tarball: Path) -> None:
    """debootstrap a minimal bookworm and tar it (about 30 s, once per machine)."""
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (run scripts/deploy-tools.sh as root)")
    with tempfile.TemporaryDirectory(dir=tarball.parent) as scratch:
        rootfs = Path(scratch) / "rootfs"
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), debian_mirror()],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0:
            raise RuntimeError(f"debootstrap failed: {(result.stdout + result.stderr)[-3000:]}")
        for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / leftovers).glob("*"):
                if item.is_file():
                    item.unlink()
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True, timeout=600)
        partial.rename(tarball)


def ensure_base_image(client: object) -> str:
    """``HFSERVE_TEST_BASE_IMAGE`` if set (pulled by the build), else the local Debian image."""
    if image := os.environ.get("HFSERVE_TEST_BASE_IMAGE"):
        return image
    import docker.errors

    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get(BASE_IMAGE_TAG)  # type: ignore[attr-defined]
        return BASE_IMAGE_TAG
    tarball = cache_dir() / "debian-bookworm-minbase.tar"
    with (cache_dir() / "base-image.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one debootstrap per machine, even with runs side by side
        if not tarball.exists():
            _make_rootfs_tarball(tarball)
    repository, tag = BASE_IMAGE_TAG.split(":")
    client.api.import_image_from_file(str(tarball), repository=repository, tag=tag)  # type: ignore[attr-defined]
    return BASE_IMAGE_TAG


@contextlib.contextmanager
def docker_host_env(host: str) -> Iterator[None]:
    """``DOCKER_HOST`` set for testcontainers, docker-compose and the docker CLI; restored after."""
    before = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = host
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = before
