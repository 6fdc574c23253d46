"""--api-key guards /v1/*, /load_model, /tokenize, /detokenize and the unversioned rerank and score aliases;
--enable-cors answers preflights; request ids echo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.fixtures.tiny_models import NEVER_EOS_MODEL_ID
from tests.support.server import ServerProcess, run_server

GOOD_ORIGIN = "http://app.example"  # only ever sent as a header value


@pytest.fixture(scope="module")
def guarded(hf_home: Path, logs_dir: Path) -> Iterator[ServerProcess]:
    args = (
        "--api-key",
        "key-one",
        "--api-key",
        "key-two",
        "--enable-cors",
        "--cors-origins",
        GOOD_ORIGIN,
        "--max-body-size",
        "4096",
    )
    with run_server(hf_home, logs_dir, *args, env={"HFSERVE_API_KEY": "ignored-when-flag-given"}) as proc:
        yield proc


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/load_model"),
        ("POST", "/tokenize"),
        ("POST", "/detokenize"),
        ("POST", "/v1/embeddings"),
        ("POST", "/rerank"),
        ("POST", "/v2/rerank"),
        ("POST", "/score"),
    ],
)
@pytest.mark.parametrize(
    "auth", [None, "Bearer wrong", "key-one", "Basic a2V5LW9uZQ==", "Bearer key-one-and-more", "Bearer"]
)
def test_guarded_paths_need_a_key(guarded: ServerProcess, method: str, path: str, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth is not None else {}
    resp = httpx.request(method, f"{guarded.url}{path}", headers=headers, json={"model": NEVER_EOS_MODEL_ID})
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"
    assert resp.json()["error"]["code"] == "invalid_api_key"


def test_x_api_key_is_a_key_too(guarded: ServerProcess) -> None:
    assert httpx.get(f"{guarded.url}/v1/models", headers={"x-api-key": "key-two"}).status_code == 200
    wrong = httpx.get(f"{guarded.url}/v1/models", headers={"x-api-key": "key-three"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"  # OpenAI's shape here
    anthropic = httpx.post(f"{guarded.url}/v1/messages", headers={"x-api-key": "key-three"}, json={})
    assert anthropic.status_code == 401
    assert anthropic.json()["type"] == "error" and anthropic.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
def test_probes_stay_open(guarded: ServerProcess, path: str) -> None:
    assert httpx.get(f"{guarded.url}{path}").status_code == 200


def test_every_configured_key_works(guarded: ServerProcess) -> None:
    for key in ("key-one", "key-two"):
        client = OpenAI(base_url=guarded.base_url, api_key=key, max_retries=0)
        reply = client.chat.completions.create(
            model=NEVER_EOS_MODEL_ID, messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
        assert reply.usage.completion_tokens == 2
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=guarded.base_url, api_key="ignored-when-flag-given", max_retries=0).models.list()


def test_cors_preflight_for_an_allowed_origin(guarded: ServerProcess) -> None:
    resp = httpx.options(
        f"{guarded.base_url}/chat/completions",
        headers={
            "Origin": GOOD_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert resp.status_code in (200, 204)
    assert resp.headers["access-control-allow-origin"] == GOOD_ORIGIN
    assert "POST" in resp.headers["access-control-allow-methods"]


def test_cors_preflight_for_another_origin_is_not_allowed(guarded: ServerProcess) -> None:
    resp = httpx.options(
        f"{guarded.base_url}/chat/completions",
        headers={"Origin": "http://elsewhere.example", "Access-Control-Request-Method": "POST"},
    )
    assert resp.headers.get("access-control-allow-origin") != "http://elsewhere.example"


def test_no_cors_headers_without_the_flag(server: ServerProcess) -> None:
    resp = httpx.options(
        f"{server.base_url}/chat/completions",
        headers={"Origin": GOOD_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in resp.headers


def test_request_id_is_echoed_and_completion_ids_stay_unique(server: ServerProcess) -> None:
    body = {"model": NEVER_EOS_MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    headers = {"X-Request-ID": "client-42"}
    first = httpx.post(f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=60)  # loads it
    second = httpx.post(f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=60)
    assert first.headers["x-request-id"] == second.headers["x-request-id"] == "client-42"
    assert first.json()["id"] != second.json()["id"]
    assert httpx.get(f"{server.url}/health").headers["x-request-id"]


def test_env_api_key_is_used_without_the_flag(hf_home: Path, logs_dir: Path) -> None:
    with run_server(hf_home, logs_dir, env={"HFSERVE_API_KEY": "env-a,env-b"}) as proc:
        assert httpx.get(f"{proc.base_url}/models").status_code == 401
        assert httpx.get(f"{proc.base_url}/models", headers={"Authorization": "Bearer env-b"}).status_code == 200


def test_oversized_body_is_413(guarded: ServerProcess) -> None:
    body = {"model": NEVER_EOS_MODEL_ID, "messages": [{"role": "user", "content": "x" * 8000}]}
    resp = httpx.post(f"{guarded.base_url}/chat/completions", json=body, headers={"Authorization": "Bearer key-one"})
    assert resp.status_code == 413
    assert resp.json()["error"]["type"] == "invalid_request_error"
