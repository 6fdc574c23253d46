"""Stored responses that outlive a process: two real servers sharing a real Redis, a SQLite store across a
restart, and a store that is down (503, and /ready says why), through the official client and raw HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types.responses import Response

from tests.fixtures.tiny_models import CHAT_MODEL_ID
from tests.support.redis_server import RedisServer, run_redis
from tests.support.server import ServerProcess, run_server

NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with run_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def replicas(hf_home: Path, logs_dir: Path, redis_server: RedisServer) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    args = (CHAT_MODEL_ID, "--responses-store", redis_server.url)
    with (
        run_server(hf_home, logs_dir, *args, wait="ready") as first,
        run_server(hf_home, logs_dir, *args, wait="ready") as second,
    ):
        yield first, second


def _client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def assert_continues(client: OpenAI, first: Response, said: str) -> None:
    """A follow-up to ``first`` through ``client``'s server answers the whole conversation: the same prompt and
    answer as the chat that spells it out."""
    follow = client.responses.create(
        model=CHAT_MODEL_ID,
        input="What is my name?",
        previous_response_id=first.id,
        temperature=0,
        extra_body=NO_THINKING,
    )
    chat = client.chat.completions.create(
        model=CHAT_MODEL_ID,
        messages=[
            {"role": "user", "content": said},
            {"role": "assistant", "content": first.output_text},
            {"role": "user", "content": "What is my name?"},
        ],
        temperature=0,
        extra_body=NO_THINKING,
    )
    assert follow.previous_response_id == first.id
    assert follow.usage.input_tokens == chat.usage.prompt_tokens
    assert follow.output_text == chat.choices[0].message.content


def test_a_response_made_on_one_replica_is_continued_and_deleted_on_the_other(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    one, other = (_client(server) for server in replicas)
    first = one.responses.create(model=CHAT_MODEL_ID, input="My name is Alice.", temperature=0, extra_body=NO_THINKING)
    assert_continues(other, first, "My name is Alice.")  # the other replica read the first turn back
    assert other.responses.retrieve(first.id).model_dump() == first.model_dump()
    one.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(first.id)
    ready = httpx.get(f"{replicas[1].url}/ready").json()
    assert ready["responses_store"]["status"] == "ok"
    assert ready["responses_store"]["url"].startswith("redis://127.0.0.1:")


def test_sqlite_keeps_responses_across_a_restart(hf_home: Path, logs_dir: Path, tmp_path: Path) -> None:
    args = (CHAT_MODEL_ID, "--responses-store", f"sqlite:///{tmp_path}/store/responses.sqlite3")
    with run_server(hf_home, logs_dir, *args, wait="ready") as server:
        first = _client(server).responses.create(
            model=CHAT_MODEL_ID, input="My name is Bob.", temperature=0, extra_body=NO_THINKING
        )
    with run_server(hf_home, logs_dir, *args, wait="ready") as restarted:
        client = _client(restarted)
        assert client.responses.retrieve(first.id).model_dump() == first.model_dump()
        assert_continues(client, first, "My name is Bob.")


def test_a_store_that_is_down_refuses_what_it_would_lose_and_readiness_says_why(
    hf_home: Path, logs_dir: Path, tmp_path: Path
) -> None:
    with run_redis(tmp_path) as gone:
        url = gone.url
    with run_server(hf_home, logs_dir, CHAT_MODEL_ID, "--responses-store", url, wait="ready") as server:
        ready = httpx.get(f"{server.url}/ready", timeout=30)
        assert ready.status_code == 200  # chat and completions do not need the store: the pod stays in rotation
        store = ready.json()["responses_store"]
        assert store["status"] == "unavailable" and "cannot be reached" in store["detail"]
        body = {"model": CHAT_MODEL_ID, "input": "Hi", "max_output_tokens": 4}
        refused = httpx.post(f"{server.base_url}/responses", json=body, timeout=30)
        assert refused.status_code == 503 and refused.headers["retry-after"]
        error = refused.json()["error"]
        assert error["code"] == "store_unavailable" and "response store" in error["message"]
        not_stored = httpx.post(f"{server.base_url}/responses", json={**body, "store": False}, timeout=60)
        assert not_stored.status_code == 200 and not_stored.json()["status"] in ("completed", "incomplete")
        lookup = httpx.get(f"{server.base_url}/responses/resp_123", timeout=30)
        assert lookup.status_code == 503  # not a 404: the store could not be asked
