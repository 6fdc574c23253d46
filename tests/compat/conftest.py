"""The compatibility suite: real client libraries against one real server process over the tiny models.

Everything stays on 127.0.0.1: each library's telemetry, tracing and remote price lists are switched off
here, before any of them is imported."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess, run_server

os.environ.update(
    LITELLM_LOCAL_MODEL_COST_MAP="True",  # litellm's model price list from the package, not the network
    OPENAI_AGENTS_DISABLE_TRACING="1",
    LANGCHAIN_TRACING_V2="false",
    LANGSMITH_TRACING="false",
    HF_HUB_OFFLINE="1",
    HF_HUB_DISABLE_TELEMETRY="1",
    DO_NOT_TRACK="1",
)


@pytest.fixture(scope="session")
def compat_hf_home(hf_home: Path, tool_hf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One HF_HOME with the tiny chat models and the tool-calling models of every format."""
    home = tmp_path_factory.mktemp("compat_hf_home")
    for source in (hf_home, tool_hf_home):
        shutil.copytree(source / "hub", home / "hub", symlinks=True, dirs_exist_ok=True)
    return home


@pytest.fixture(scope="session")
def compat_server(compat_hf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One unpinned server for the whole suite; each model loads on its first request and stays."""
    with run_server(compat_hf_home, tmp_path_factory.mktemp("compat_logs"), "--model-timeout", "-1") as server:
        yield server


@pytest.fixture(scope="session")
def base_url(compat_server: ServerProcess) -> str:
    return compat_server.base_url
