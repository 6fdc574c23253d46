"""Responses API output schemas: fields OpenAI sends as ``null`` stay in the JSON, other unset ones go."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from app.protocol.response_objects import (
    FunctionCallOutput,
    OutputMessage,
    OutputText,
    ResponseObject,
    ResponseUsage,
)

KEPT_AS_NULL = {
    "error",
    "incomplete_details",
    "instructions",
    "max_output_tokens",
    "previous_response_id",
    "temperature",
    "top_p",
    "usage",
    "user",
    "reasoning",
}


def wire(obj: ResponseObject) -> dict:
    """As the API sends it (``exclude_none``)."""
    return json.loads(obj.model_dump_json(exclude_none=True))


def test_unset_response_fields_openai_shows_are_null_and_the_rest_are_absent() -> None:
    data = wire(ResponseObject(id="resp_1", created_at=1, status="in_progress", model="org/model"))
    assert {name for name, value in data.items() if value is None} == KEPT_AS_NULL
    assert "top_logprobs" not in data
    assert data["object"] == "response" and data["output"] == [] and data["text"] == {"format": {"type": "text"}}


def test_set_values_replace_the_nulls_and_nested_items_drop_their_unset_fields() -> None:
    message = OutputMessage(id="msg_1", status="completed", content=[OutputText(text="Hi")])
    call = FunctionCallOutput(id="fc_1", status="completed", call_id="call_1", name="f", arguments="{}")
    usage = ResponseUsage(input_tokens=3, output_tokens=2, total_tokens=5)
    obj = ResponseObject(
        id="resp_1", created_at=1, status="completed", model="m", output=[message, call], usage=usage, top_p=0.5
    )
    data = wire(obj)
    assert data["usage"]["input_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0}
    assert data["top_p"] == 0.5 and data["temperature"] is None
    assert data["output"][0]["content"] == [{"type": "output_text", "text": "Hi", "annotations": []}]
    assert data["output"][1]["type"] == "function_call"
    assert ResponseObject.model_validate(data) == obj  # what is stored reads back the same


def test_output_objects_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        ResponseObject.model_validate({"id": "r", "created_at": 1, "status": "completed", "model": "m", "x": 1})
    with pytest.raises(ValidationError):
        ResponseObject(id="r", created_at=1, status="cancelled", model="m")  # type: ignore[arg-type]
