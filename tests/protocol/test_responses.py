"""Responses API request schemas: ``input`` items told apart by their ``type``, and bad items named."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.protocol.responses import (
    FunctionCallItem,
    FunctionCallOutputItem,
    ItemReference,
    MessageItem,
    ReasoningItem,
    ResponseRequest,
)


def request(*items: dict[str, Any], **fields: Any) -> ResponseRequest:
    return ResponseRequest.model_validate({"model": "org/model", "input": list(items), **fields})


def errors(*items: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        request(*items)
    return caught.value.errors(include_url=False)


def test_each_item_type_becomes_its_model() -> None:
    req = request(
        {"role": "user", "content": "Hi"},  # an easy input message has no type
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thinking"}]},
        {"type": "item_reference", "id": "msg_1"},
    )
    kinds = [type(item) for item in req.input]
    assert kinds == [MessageItem, MessageItem, FunctionCallItem, FunctionCallOutputItem, ReasoningItem, ItemReference]


def test_item_objects_are_told_apart_as_well_as_dicts() -> None:
    call = FunctionCallItem(type="function_call", call_id="c1", name="f", arguments="{}")
    assert request(call.model_dump()).input == [call]
    assert type(ResponseRequest(input=[call]).input[0]) is FunctionCallItem


def test_an_unknown_item_type_is_named_with_the_known_ones() -> None:
    (error,) = [error for error in errors({"type": "web_search_call", "id": "x"}) if error["type"] == "invalid_item"]
    assert error["loc"][0] == "input" and error["loc"][-1] == 0
    assert "message, function_call, function_call_output, reasoning, item_reference" in error["msg"]


def test_an_item_reference_names_an_item() -> None:
    locations = [error["loc"] for error in errors({"type": "item_reference", "id": ""})]
    assert any(loc[-2:] == ("item:item_reference", "id") for loc in locations)


def test_errors_in_an_item_name_its_fields() -> None:
    locations = [error["loc"] for error in errors({"type": "function_call", "call_id": "c1", "arguments": "{}"})]
    assert any(loc[-2:] == ("item:function_call", "name") for loc in locations)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "hi", "top_logprobs": 21}, "top_logprobs"),
        ({"input": "hi", "truncation": "middle"}, "truncation"),
        ({"input": "hi", "temperature": 2.5}, "temperature"),
    ],
)
def test_request_bounds(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ResponseRequest.model_validate(fields)
    assert caught.value.errors(include_url=False)[0]["loc"][0] == field


def test_unknown_request_and_item_fields_are_kept() -> None:
    req = request({"role": "user", "content": "Hi", "status": "completed"}, service_tier="auto")
    assert req.model_extra == {"service_tier": "auto"}
    assert req.input[0].model_extra == {"status": "completed"}
