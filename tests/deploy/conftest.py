"""Fixtures of the deployment tests: a Docker engine, the image built from this repository, tiny models.

Container and compose tests need a Docker engine (see ``tests/support/docker_engine.py``). Without one
they skip with the reason, repeated in the summary at the end of the run; with
``HFSERVE_REQUIRE_DOCKER=1`` (set by ``.ci/run``) they fail instead, so CI cannot pass without them.
The engine lives for this package only: it is stopped as soon as the last deployment test is done.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker_engine import DockerEngine, acquire_engine, docker_host_env, ensure_base_image
from tests.support.image_build import BuiltImage, build_image

# The reaper image cannot be pulled here; every container is removed by its fixture instead.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

IMAGE_TAG = "hfserve:test"
_NOTES: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _NOTES:
        terminalreporter.section("deployment tests")
        for note in _NOTES:
            terminalreporter.write_line(note)


@pytest.fixture(scope="package")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    engine, why = acquire_engine(tmp_path_factory.mktemp("dockerd"))
    if engine is None:
        _NOTES.append(f"CONTAINER TESTS DID NOT RUN: {why}")
        if os.environ.get("HFSERVE_REQUIRE_DOCKER") == "1":
            pytest.fail(f"HFSERVE_REQUIRE_DOCKER=1 but {why}", pytrace=False)
        pytest.skip(why)
    _NOTES.append(f"Docker engine: {engine.description}")
    try:
        with docker_host_env(engine.host):
            yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="package")
def docker_client(docker_engine: DockerEngine) -> Iterator[Any]:
    import docker

    client = docker.DockerClient(base_url=docker_engine.host, timeout=600)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="package")
def hfserve_image(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    """The image of this repository, built on the local Debian base (layers cached between runs)."""
    base = ensure_base_image(docker_client)
    built = build_image(docker_client, base, IMAGE_TAG, tmp_path_factory.mktemp("image") / "build.log")
    _NOTES.append(
        f"image {built.tag} built on {built.base_image} by {built.builder} in {built.seconds:.1f} s"
        f" (log: {built.log_path})"
    )
    return built


@pytest.fixture(scope="package")
def container_hf_home(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny-model cache the container's non-root user may write to (mounted at /data)."""
    home = tmp_path_factory.mktemp("container_hf_home")
    shutil.copytree(tiny_models / "hub", home / "hub", symlinks=True)
    for path in [home, *home.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o777 if path.is_dir() else 0o666)
    return home
