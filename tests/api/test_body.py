"""Request bodies → wire models, and pydantic errors → OpenAI-shaped InvalidRequest."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from app.api.body import parse_body, validation_error
from app.errors import InvalidRequest
from app.protocol.chat import ChatCompletionRequest

USER = {"role": "user", "content": "Hello"}


def error_for(raw: bytes | str | dict[str, Any]) -> InvalidRequest:
    data = json.dumps(raw) if isinstance(raw, dict) else raw
    with pytest.raises(ValidationError) as exc:
        ChatCompletionRequest.model_validate_json(data)
    return validation_error(exc.value)


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"messages": []}, "messages"),
        ({}, "messages"),
        ({"messages": "hello"}, "messages"),
        ({"messages": [USER], "max_tokens": -1}, "max_tokens"),
        ({"messages": [USER], "max_tokens": "ten"}, "max_tokens"),
        ({"messages": [USER], "temperature": 3}, "temperature"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [USER, {"content": "x"}]}, "messages[1].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [USER], "stop": 5}, "stop"),
        ({"messages": [USER], "stop": ["a", 5]}, "stop[1]"),
        ({"messages": [USER], "generation_config": 5}, "generation_config"),
        ({"messages": [USER], "stream_options": {"include_usage": "maybe"}}, "stream_options.include_usage"),
        ({"messages": [USER], "tool_choice": 5}, "tool_choice"),
    ],
)
def test_validation_error_param(payload: dict[str, Any], param: str) -> None:
    err = error_for(payload)
    assert isinstance(err, InvalidRequest)
    assert err.status == 400
    assert err.type == "invalid_request_error"
    assert err.param == param
    assert err.message.startswith(f"{param}: ")


def test_validation_error_message_carries_pydantic_reason() -> None:
    err = error_for({"messages": [USER], "max_tokens": -1})
    assert err.message == "max_tokens: Input should be greater than or equal to 1"
    assert err.body() == {
        "error": {
            "message": "max_tokens: Input should be greater than or equal to 1",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": None,
        }
    }


@pytest.mark.parametrize("raw", [b"{bad", b'{"messages": [', b"", b"nope"])
def test_invalid_json_says_the_body_is_not_json(raw: bytes) -> None:
    err = error_for(raw)
    assert err.message.startswith("The request body is not valid JSON")
    assert err.param is None
    assert err.status == 400


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42"])
def test_json_that_is_not_an_object(raw: bytes) -> None:
    err = error_for(raw)
    assert err.param is None
    assert err.message.startswith("body: ")


class _FakeRequest:
    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    async def body(self) -> bytes:
        return self._payload


async def test_parse_body_returns_the_model() -> None:
    req = await parse_body(_FakeRequest(json.dumps({"messages": [USER], "seed": 3}).encode()), ChatCompletionRequest)  # type: ignore[arg-type]
    assert isinstance(req, ChatCompletionRequest)
    assert req.seed == 3


@pytest.mark.parametrize("raw", [b"", b"   \n"])
async def test_parse_body_rejects_an_empty_body(raw: bytes) -> None:
    with pytest.raises(InvalidRequest) as exc:
        await parse_body(_FakeRequest(raw), ChatCompletionRequest)  # type: ignore[arg-type]
    assert "empty" in exc.value.message


async def test_parse_body_maps_validation_errors() -> None:
    with pytest.raises(InvalidRequest) as exc:
        await parse_body(_FakeRequest(b'{"messages": []}'), ChatCompletionRequest)  # type: ignore[arg-type]
    assert exc.value.param == "messages"
    assert isinstance(exc.value.__cause__, ValidationError)


async def test_parse_body_logs_each_unknown_field_once() -> None:
    payload = json.dumps({"messages": [USER], "x_test_unknown_field": 1}).encode()
    with capture_logs() as logs:
        first = await parse_body(_FakeRequest(payload), ChatCompletionRequest)  # type: ignore[arg-type]
        await parse_body(_FakeRequest(payload), ChatCompletionRequest)  # type: ignore[arg-type]
    assert first.model_extra == {"x_test_unknown_field": 1}
    unknown = [e for e in logs if e.get("event") == "unknown_request_field_ignored"]
    assert [e["field"] for e in unknown] == ["x_test_unknown_field"]
    assert unknown[0]["request_type"] == "ChatCompletionRequest"
