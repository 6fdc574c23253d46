"""Chat Completions wire schemas: request validation and chunk serialisation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from app.protocol.chat import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionRequest,
    ChatDelta,
    ContentPart,
)
from app.protocol.common import Usage

USER = {"role": "user", "content": "Hello"}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "org/model", "messages": [USER], **fields}


def first_error(data: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ValidationError) as exc:
        ChatCompletionRequest.model_validate(data)
    return exc.value.errors(include_url=False)[0]


def test_minimal_request() -> None:
    req = ChatCompletionRequest.model_validate({"messages": [USER]})
    assert req.model is None
    assert req.stream is False
    assert req.messages[0].role == "user"
    assert req.messages[0].content == "Hello"
    assert req.model_extra == {}


def test_request_from_json_bytes() -> None:
    req = ChatCompletionRequest.model_validate_json(json.dumps(body(temperature=0.5, stop=["a", "b"])))
    assert req.temperature == 0.5
    assert req.stop == ["a", "b"]


def test_empty_messages_are_rejected() -> None:
    err = first_error(body(messages=[]))
    assert err["loc"] == ("messages",)
    assert err["type"] == "too_short"


def test_missing_messages_are_rejected() -> None:
    err = first_error({"model": "m"})
    assert err["loc"] == ("messages",)
    assert err["type"] == "missing"


@pytest.mark.parametrize("role", ["bot", "USER", "", "function"])
def test_bad_role_is_rejected(role: str) -> None:
    err = first_error(body(messages=[{"role": role, "content": "x"}]))
    assert err["loc"] == ("messages", 0, "role")


@pytest.mark.parametrize("role", ["system", "developer", "user", "assistant", "tool"])
def test_all_openai_roles_are_accepted(role: str) -> None:
    req = ChatCompletionRequest.model_validate(body(messages=[{"role": role, "content": "x"}]))
    assert req.messages[0].role == role


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", -1),
        ("max_tokens", 0),
        ("max_completion_tokens", 0),
        ("temperature", 2.01),
        ("temperature", -0.1),
        ("top_p", 0.0),
        ("top_p", 1.5),
        ("top_k", -2),
        ("min_p", 1.1),
        ("presence_penalty", 2.5),
        ("frequency_penalty", -2.5),
        ("repetition_penalty", 0.0),
        ("n", 0),
        ("top_logprobs", 21),
    ],
)
def test_out_of_range_numbers_are_rejected(field: str, value: float) -> None:
    err = first_error(body(**{field: value}))
    assert err["loc"] == (field,)


@pytest.mark.parametrize(
    ("field", "value"),
    [("temperature", 0.0), ("temperature", 2.0), ("max_tokens", 1), ("top_p", 1.0), ("top_k", -1), ("n", 128)],
)
def test_boundary_values_are_accepted(field: str, value: float) -> None:
    req = ChatCompletionRequest.model_validate(body(**{field: value}))
    assert getattr(req, field) == value


def test_content_as_a_list_of_text_parts() -> None:
    parts = [{"type": "text", "text": "Hello "}, {"type": "text", "text": "world"}]
    req = ChatCompletionRequest.model_validate(body(messages=[{"role": "user", "content": parts}]))
    content = req.messages[0].content
    assert isinstance(content, list)
    assert all(isinstance(part, ContentPart) for part in content)
    assert [part.text for part in content] == ["Hello ", "world"]


def test_content_parts_keep_their_extra_fields() -> None:
    part = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    req = ChatCompletionRequest.model_validate(body(messages=[{"role": "user", "content": [part]}]))
    content = req.messages[0].content
    assert isinstance(content, list)
    assert content[0].type == "image_url"
    assert content[0].model_extra == {"image_url": {"url": "data:image/png;base64,AAAA"}}


def test_content_part_without_type_is_rejected() -> None:
    with pytest.raises(ValidationError):
        ChatCompletionRequest.model_validate(body(messages=[{"role": "user", "content": [{"text": "x"}]}]))


def test_content_may_be_null_for_assistant_tool_calls() -> None:
    call = {"id": "c0", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    req = ChatCompletionRequest.model_validate(
        body(messages=[USER, {"role": "assistant", "content": None, "tool_calls": [call]}])
    )
    assert req.messages[1].content is None
    assert [c.model_dump(exclude_none=True) for c in req.messages[1].tool_calls or []] == [call]


def test_unknown_extra_fields_are_kept_in_model_extra() -> None:
    req = ChatCompletionRequest.model_validate(body(store=True, metadata={"k": "v"}))
    assert req.model_extra == {"store": True, "metadata": {"k": "v"}}


def test_unknown_message_fields_are_kept() -> None:
    req = ChatCompletionRequest.model_validate(body(messages=[{"role": "user", "content": "x", "cache": "yes"}]))
    assert req.messages[0].model_extra == {"cache": "yes"}


def test_stop_string_or_list_and_generation_config_string_or_object() -> None:
    assert ChatCompletionRequest.model_validate(body(stop="END")).stop == "END"
    assert ChatCompletionRequest.model_validate(body(stop=["a"])).stop == ["a"]
    assert (
        ChatCompletionRequest.model_validate(body(generation_config='{"top_k": 2}')).generation_config == '{"top_k": 2}'
    )
    assert ChatCompletionRequest.model_validate(body(generation_config={"top_k": 2})).generation_config == {"top_k": 2}
    first_error(body(stop=5))


def test_stream_options() -> None:
    req = ChatCompletionRequest.model_validate(body(stream=True, stream_options={"include_usage": True}))
    assert req.stream is True
    assert req.stream_options is not None and req.stream_options.include_usage is True


# -- responses ---------------------------------------------------------------------------------


def chunk(**delta: Any) -> ChatCompletionChunk:
    return ChatCompletionChunk(
        id="chatcmpl-1", created=1, model="org/model", choices=[ChatChunkChoice(index=0, delta=ChatDelta(**delta))]
    )


def test_chunk_serialisation_with_exclude_none_omits_nulls() -> None:
    data = json.loads(chunk(content="Hi").model_dump_json(exclude_none=True))
    assert data == {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "org/model",
        "choices": [{"index": 0, "delta": {"content": "Hi"}}],
    }


def test_first_chunk_carries_the_role_and_an_empty_content() -> None:
    data = json.loads(chunk(role="assistant", content="").model_dump_json(exclude_none=True))
    assert data["choices"][0]["delta"] == {"role": "assistant", "content": ""}


def test_final_chunk_with_finish_reason_and_usage() -> None:
    final = ChatCompletionChunk(
        id="chatcmpl-1",
        created=1,
        model="m",
        choices=[ChatChunkChoice(index=0, delta=ChatDelta(), finish_reason="stop")],
        usage=Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5),
    )
    data = json.loads(final.model_dump_json(exclude_none=True))
    assert data["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert data["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_completion_serialisation_omits_unset_optionals() -> None:
    completion = ChatCompletion(
        id="chatcmpl-2",
        created=2,
        model="m",
        choices=[ChatChoice(index=0, message=ChatCompletionMessage(content="ok"), finish_reason="length")],
        usage=Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2),
    )
    data = json.loads(completion.model_dump_json(exclude_none=True))
    assert data["object"] == "chat.completion"
    assert data["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "ok"},
        "finish_reason": "length",
    }
    assert "system_fingerprint" not in data


def test_response_models_forbid_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        ChatDelta(content="x", unknown=1)  # type: ignore[call-arg]
