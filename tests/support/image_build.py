"""Build the project's Dockerfile the way CI does: local base image, local torch wheel, host CAs.

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


def build_image(client: Any, base_image: str, tag: str, log_path: Path) -> BuiltImage:
    """``docker build --network=host`` of the repository, streaming the log to ``log_path``."""
    args = {"BASE_IMAGE": base_image, "TORCH_WHEEL": torch_wheel(), "VERSION": "0.0.0-test", "REVISION": "test"}
    if bundle := ca_bundle():
        args["CA_BUNDLE"] = bundle
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
    return BuiltImage(tag=tag, base_image=base_image, seconds=time.monotonic() - start, log_path=log_path)
