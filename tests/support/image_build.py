"""Build the project's Dockerfile the way CI does: local base image, local torch wheel, host CAs.

BuildKit is used where a docker CLI offers it (the buildx plugin, or the 20.10 CLI's own BuildKit): it
runs the two stages side by side, which halves a cold build here. Otherwise the engine's classic
builder is driven through its API.

The build inputs that must not be downloaded go into ``docker/extra/`` (ignored by git, kept in the
build context by ``.dockerignore``): the torch wheel that is installed here, fetched with
``pip download --no-deps`` (a local copy on these machines), and the host's CA bundle, which pip inside
the build needs where TLS is intercepted.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.server import ROOT

EXTRA = ROOT / "docker" / "extra"
HOST_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
IMAGE_PYTHON = "3.11"  # python3 of Debian bookworm, the CI base image


@dataclass
class BuiltImage:
    tag: str
    base_image: str
    seconds: float
    log_path: Path
    builder: str


def torch_wheel() -> str:
    """File name (in docker/extra) of a torch wheel for the image's Python, same version as installed here."""
    version = os.environ.get("HFSERVE_TEST_TORCH_VERSION") or importlib.metadata.version("torch")
    tag = "cp" + IMAGE_PYTHON.replace(".", "")
    EXTRA.mkdir(parents=True, exist_ok=True)
    found = sorted(EXTRA.glob(f"torch-{version}-{tag}-{tag}-*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             f"--python-version={IMAGE_PYTHON}", f"torch=={version}", "-d", str(EXTRA)],
            check=True, capture_output=True, timeout=900,
        )  # fmt: skip
        found = sorted(EXTRA.glob(f"torch-{version}-{tag}-{tag}-*.whl"))
    if not found:
        raise RuntimeError(f"pip download produced no torch {version} wheel for {tag} in {EXTRA}")
    return found[-1].name


def ca_bundle() -> str | None:
    """The host's CA bundle copied into docker/extra (name returned), or None when there is none."""
    for candidate in HOST_CA_BUNDLES:
        if Path(candidate).is_file():
            EXTRA.mkdir(parents=True, exist_ok=True)
            target = EXTRA / "host-ca-bundle.pem"
            shutil.copyfile(candidate, target)
            return target.name
    return None


def buildkit_cli() -> str | None:
    """A docker CLI that builds with BuildKit, or None."""
    for docker in dict.fromkeys(filter(None, [shutil.which("docker"), "/usr/bin/docker"])):
        if not Path(docker).is_file():
            continue
        if subprocess.run([docker, "buildx", "version"], capture_output=True, timeout=30).returncode == 0:
            return docker
        version = subprocess.run(
            [docker, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
        if version and version.split(".")[0].isdigit() and 19 <= int(version.split(".")[0]) < 23:
            return docker  # BuildKit built into the CLI, no plugin needed
    return None


def build_args(base_image: str) -> dict[str, str]:
    args = {"BASE_IMAGE": base_image, "TORCH_WHEEL": torch_wheel(), "VERSION": "0.0.0-test", "REVISION": "test"}
    if bundle := ca_bundle():
        args["CA_BUNDLE"] = bundle
    return args


def build_image(client: Any, base_image: str, tag: str, log_path: Path) -> BuiltImage:
    """``docker build --network=host`` of the repository, the log written to ``log_path``."""
    args = build_args(base_image)
    start = time.monotonic()
    docker = buildkit_cli()
    if docker is not None:
        command = [docker, "build", "--network=host", "--progress=plain", "-t", tag, str(ROOT)]
        command[2:2] = [f"--build-arg={name}={value}" for name, value in args.items()]
        with log_path.open("w") as log:
            log.write(f"{' '.join(command)}\n")
            log.flush()
            result = subprocess.run(
                command, env={**os.environ, "DOCKER_BUILDKIT": "1"}, stdout=log, stderr=subprocess.STDOUT, timeout=1800
            )
        if result.returncode != 0:
            raise RuntimeError(f"image build failed:\n{log_path.read_text(errors='replace')[-4000:]}")
        # the cache lives in the engine's data root from run to run: drop what has not been used for days
        subprocess.run([docker, "builder", "prune", "-f", "--filter", "until=72h"], capture_output=True, timeout=300)
        builder = f"BuildKit (via {docker})"
    else:
        _build_classic(client, args, tag, log_path)
        builder = "the classic builder"
    return BuiltImage(tag, base_image, time.monotonic() - start, log_path, builder)


def _build_classic(client: Any, args: dict[str, str], tag: str, log_path: Path) -> None:
    start = time.monotonic()
    errors = []
    with log_path.open("w") as log:
        log.write(f"build args: {args}\n")
        for event in client.api.build(
            path=str(ROOT), tag=tag, buildargs=args, network_mode="host", rm=True, forcerm=True, decode=True
        ):
            if "stream" in event:
                text = event["stream"]
                log.write(f"[{time.monotonic() - start:7.1f}s] {text}" if text.startswith("Step ") else text)
            if "error" in event:
                errors.append(event["error"])
                log.write(f"ERROR: {event['error']}\n")
    if errors:
        tail = log_path.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"image build failed: {errors[-1]}\n{tail}")
