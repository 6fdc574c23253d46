"""Local model directories named by a request: only below ``--allowed-local-model-path``, and every other
name gets the same answer, whether the path exists or not (a real unpinned server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.tiny_models import CHAT_MODEL_ID, NEVER_EOS_MODEL_ID
from tests.support.models import snapshot_path
from tests.support.server import ServerProcess, run_server


@pytest.fixture(scope="module")
def allowed_root(hf_home: Path) -> Path:
    return snapshot_path(hf_home, CHAT_MODEL_ID).parent  # the chat model's snapshots folder


@pytest.fixture(scope="module")
def server(hf_home: Path, logs_dir: Path, allowed_root: Path) -> Iterator[ServerProcess]:
    args = ("--model-timeout", "-1", "--allowed-local-model-path", str(allowed_root))
    with run_server(hf_home, logs_dir, *args) as proc:
        yield proc


def _chat(server: ServerProcess, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    return httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=120)


def test_a_directory_below_an_allowed_path_is_served(server: ServerProcess, hf_home: Path) -> None:
    local = snapshot_path(hf_home, CHAT_MODEL_ID)
    response = _chat(server, str(local))
    assert response.status_code == 200, response.text
    assert response.json()["model"] == str(local)


def test_every_other_local_name_gets_the_same_answer(server: ServerProcess, hf_home: Path, tmp_path: Path) -> None:
    outside = snapshot_path(hf_home, NEVER_EOS_MODEL_ID)  # a real model, but not below the allowed path
    names = ["~", "/proc/self/cwd", str(outside), str(tmp_path), str(tmp_path / "missing"), "./models", "/"]
    answers = set()
    for name in names:
        response = _chat(server, name)
        assert response.status_code == 404, response.text
        error = response.json()["error"]
        assert error["param"] == "model" and error["code"] == "model_not_found"
        answers.add(error["message"].replace(f"`{name}`", "`<model>`"))
    assert len(answers) == 1, answers
    assert str(Path.home()) not in answers.pop()
