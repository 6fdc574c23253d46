"""Tool definitions, forced choices and past calls: typed and strict, with bounded argument nesting."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from app.protocol.tools import MAX_JSON_DEPTH, FunctionTool, ResponsesTool, ToolCall, ToolChoice, json_depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("{}", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('["[[[[", {"k": "]]\\"[["}]', 2),  # brackets inside strings, and an escaped quote, do not count
        ("[" * 70, 70),  # unclosed: measured as sent
        ("plain text", 0),
        ("]]][", 1),
    ],
)
def test_json_depth(text: str, depth: int) -> None:
    assert json_depth(text) == depth


def test_arguments_nest_at_most_the_bound() -> None:
    fits = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert ToolCall.model_validate({"function": {"name": "f", "arguments": fits}}).function.arguments == fits
    with pytest.raises(ValidationError) as caught:
        ToolCall.model_validate({"function": {"name": "f", "arguments": "[" + fits + "]"}})
    assert caught.value.errors()[0]["loc"][:2] == ("function", "arguments")


@pytest.mark.parametrize(
    "tool",
    [{}, {"type": "function"}, {"type": "function", "function": {}}, {"type": "web_search"},
     {"type": "function", "function": {"name": 5}}, {"type": "function", "function": {"name": ""}},
     {"type": "function", "function": {"name": "f", "parameters": "{}"}},
     {"type": "function", "function": {"name": "f", "strict": 1}}],
)  # fmt: skip
def test_chat_tools_are_checked_in_full(tool: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FunctionTool.model_validate(tool)


def test_responses_tools_take_both_forms_and_leave_other_types_to_serving() -> None:
    assert ResponsesTool.model_validate({"type": "function", "name": "f"}).name == "f"
    assert ResponsesTool.model_validate({"type": "function", "function": {"name": "f"}}).function is not None
    assert ResponsesTool.model_validate({"type": "web_search"}).type == "web_search"
    with pytest.raises(ValidationError):
        ResponsesTool.model_validate({"type": "function", "name": 5})


@pytest.mark.parametrize("choice", ["auto", "none", "required", {"type": "function", "function": {"name": "f"}}])
def test_tool_choices(choice: Any) -> None:
    TypeAdapter(ToolChoice).validate_python(choice)


@pytest.mark.parametrize("choice", ["sometimes", 5, {"function": 5}, {"type": "function", "function": {}}, True])
def test_bad_tool_choices(choice: Any) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(ToolChoice).validate_python(choice)
