"""Bad input gets OpenAI-shaped errors with fitting statuses, never a 500 or a traceback."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from app.api.error_handler import anthropic_body, anthropic_status, is_anthropic
from app.errors import (
    AuthenticationFailed,
    EngineFailure,
    HfServeError,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    PayloadTooLarge,
    ServiceUnavailable,
)
from tests.fixtures.tiny_models import CHAT_MODEL_ID, ENCODER_MODEL_ID, NEVER_EOS_MODEL_ID, UNSERVED_MODEL_ID
from tests.support.server import ServerProcess

USER = [{"role": "user", "content": "Hello"}]


def _post(
    server: ServerProcess,
    body: object | None = None,
    *,
    content: bytes | None = None,
    path: str = "/v1/chat/completions",
) -> httpx.Response:
    if content is None:
        return httpx.post(f"{server.url}{path}", json=body, timeout=60)
    return httpx.post(f"{server.url}{path}", content=content, headers={"content-type": "application/json"}, timeout=60)


def _error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "Traceback" not in error["message"]
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": CHAT_MODEL_ID}, "messages"),
        ({"model": CHAT_MODEL_ID, "messages": []}, "messages"),
        ({"model": CHAT_MODEL_ID, "messages": "hi"}, "messages"),
        ({"model": CHAT_MODEL_ID, "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"model": CHAT_MODEL_ID, "messages": USER, "max_tokens": -5}, "max_tokens"),
        ({"model": CHAT_MODEL_ID, "messages": USER, "max_tokens": 0}, "max_tokens"),
        ({"model": CHAT_MODEL_ID, "messages": USER, "temperature": 3}, "temperature"),
        ({"model": CHAT_MODEL_ID, "messages": USER, "top_p": 0}, "top_p"),
        ({"model": CHAT_MODEL_ID, "messages": USER, "n": 0}, "n"),
        ({"model": CHAT_MODEL_ID, "messages": USER, "n": 64}, "n"),  # more choices than the batch holds
        ({"model": CHAT_MODEL_ID, "messages": USER, "top_logprobs": 2}, "top_logprobs"),
        ({"model": CHAT_MODEL_ID, "messages": USER, "logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        (
            {
                "model": CHAT_MODEL_ID,
                "messages": USER,
                "response_format": {"type": "json_schema", "json_schema": {"schema": {"not": {"type": "string"}}}},
            },
            "response_format.json_schema.schema",
        ),
        ({"model": CHAT_MODEL_ID, "messages": USER, "response_format": {"type": "xml"}}, "response_format.type"),
        ({"model": CHAT_MODEL_ID, "messages": USER, "generation_config": "{nope"}, "generation_config"),
        ({"model": CHAT_MODEL_ID, "messages": USER, "generation_config": {"num_beams": 4}}, "generation_config"),
        ({"model": CHAT_MODEL_ID, "messages": USER, "logit_bias": {"abc": 1}}, "logit_bias"),
        ({"model": CHAT_MODEL_ID, "messages": USER, "seed": 2**64}, "seed"),
        ({"model": CHAT_MODEL_ID, "messages": USER, "stop": [f"s{i}" for i in range(17)]}, "stop"),
        ({"model": CHAT_MODEL_ID, "messages": USER, "stop": "x" * 513}, "stop"),
        ({"model": CHAT_MODEL_ID, "messages": USER, "tool_choice": "required"}, "tool_choice"),
        ({"model": CHAT_MODEL_ID, "messages": USER, "tool_choice": "sometimes", "tools": []}, "tool_choice"),
        (
            {
                "model": CHAT_MODEL_ID,
                "messages": USER,
                "chat_template_kwargs": {"continue_final_message": True, "add_generation_prompt": True},
            },
            "chat_template_kwargs",
        ),
        (
            {"model": CHAT_MODEL_ID, "messages": USER, "chat_template_kwargs": {"tokenize": True}},
            "chat_template_kwargs",
        ),
        (
            {
                "model": CHAT_MODEL_ID,
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
                    }
                ],
            },
            "messages[0].content[0]",
        ),
        ({"model": ENCODER_MODEL_ID, "messages": USER}, "model"),  # an embedding model
        ({"model": UNSERVED_MODEL_ID, "messages": USER}, "model"),
        ({"messages": USER}, "model"),
    ],
)
def test_invalid_requests_are_400(server: ServerProcess, body: dict, param: str) -> None:
    error = _error(_post(server, body), 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b"\xff\xfe"])
def test_malformed_bodies_are_400(server: ServerProcess, content: bytes) -> None:
    _error(_post(server, content=content), 400)


def test_unknown_model_is_404(server: ServerProcess) -> None:
    error = _error(_post(server, {"model": "nobody/no-such-model", "messages": USER}), 404)
    assert error["code"] == "model_not_found" and error["param"] == "model"


def test_unknown_model_through_openai_client(server: ServerProcess) -> None:
    client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="nobody/no-such-model", messages=USER)
    assert raised.value.body["code"] == "model_not_found"


def test_prompt_longer_than_context_is_400(server: ServerProcess) -> None:
    long_text = "word " * 5000  # the tiny models allow 2048 positions
    error = _error(
        _post(server, {"model": NEVER_EOS_MODEL_ID, "messages": [{"role": "user", "content": long_text}]}), 400
    )
    assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
    error = _error(_post(server, {"model": NEVER_EOS_MODEL_ID, "messages": USER, "max_tokens": 4000}), 400)
    assert error["code"] == "context_length_exceeded" and error["param"] == "max_tokens"


def test_unknown_route_and_wrong_method(server: ServerProcess) -> None:
    _error(httpx.get(f"{server.url}/v1/nothing-here"), 404)
    _error(httpx.get(f"{server.url}/v1/chat/completions"), 405)


def test_unknown_fields_are_accepted(server: ServerProcess) -> None:
    resp = _post(
        server, {"model": NEVER_EOS_MODEL_ID, "messages": USER, "max_tokens": 2, "some_future_field": {"x": 1}}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["usage"]["completion_tokens"] == 2


def test_server_still_serves_after_bad_input(server: ServerProcess) -> None:
    for content in (b"{", b"null", b'{"messages": 5}'):
        _post(server, content=content)
    resp = _post(server, {"model": NEVER_EOS_MODEL_ID, "messages": USER, "max_tokens": 3})
    assert resp.status_code == 200
    assert "Traceback" not in server.log()


def test_a_directory_that_is_not_a_model_is_404(server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    error = _error(_post(server, {"model": str(tmp_path), "messages": USER}), 404)
    assert error["code"] == "model_not_found"


@pytest.mark.parametrize("name", ["~no-such-user-here/x", "a" * 300, "org/" + "b" * 300])
def test_model_names_that_trip_the_filesystem_are_not_500(server: ServerProcess, name: str) -> None:
    resp = _post(server, {"model": name, "messages": USER})
    assert resp.status_code in (400, 404), resp.text
    assert resp.json()["error"]["param"] == "model"


def test_extreme_seeds_are_accepted(server: ServerProcess) -> None:
    for seed in (2**63 - 1, -(2**63)):
        body = {"model": NEVER_EOS_MODEL_ID, "messages": USER, "seed": seed, "n": 2, "max_tokens": 3}
        resp = _post(server, body)
        assert resp.status_code == 200, resp.text
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_continue_final_message(server: ServerProcess) -> None:
    messages = [*USER, {"role": "assistant", "content": "Hello! I am"}]
    body = {
        "model": CHAT_MODEL_ID,
        "messages": messages,
        "temperature": 0,
        "chat_template_kwargs": {"continue_final_message": True, "enable_thinking": False},
    }
    resp = _post(server, body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"].startswith(" a tiny demo model")


# -- Anthropic's shape, on the Messages API's routes -----------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (InvalidRequest("bad"), 400, "invalid_request_error"),
        (AuthenticationFailed("no key"), 401, "authentication_error"),
        (ModelNotFound("org/none"), 404, "not_found_error"),
        (PayloadTooLarge("big"), 413, "request_too_large"),
        (Overloaded("queue full"), 529, "overloaded_error"),
        (ServiceUnavailable("loading"), 503, "overloaded_error"),
        (EngineFailure("boom"), 500, "api_error"),
    ],
)
def test_anthropic_error_shape(error: HfServeError, status: int, kind: str) -> None:
    assert anthropic_status(error) == status
    assert anthropic_body(error) == {"type": "error", "error": {"type": kind, "message": error.message}}


@pytest.mark.parametrize(
    ("path", "anthropic"),
    [
        ("/v1/messages", True),
        ("/v1/messages/count_tokens", True),
        ("/v1/messagesx", False),
        ("/v1/chat/completions", False),
    ],
)
def test_the_shape_is_picked_by_route(path: str, anthropic: bool) -> None:
    assert is_anthropic(path) is anthropic
