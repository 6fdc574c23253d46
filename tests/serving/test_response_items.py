"""Responses input items → chat-template messages, and output items back into input items."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from app.errors import InvalidRequest, UnsupportedParameter
from app.protocol.response_objects import (
    FunctionCallOutput,
    OutputMessage,
    OutputText,
    ReasoningContent,
    ReasoningOutput,
)
from app.protocol.responses import InputItem
from app.protocol.tools import ResponsesTool
from app.serving.response_items import as_input_item, chat_tools, input_items, listed_item, to_chat_messages

ITEMS = TypeAdapter(list[InputItem])
TOOLS = TypeAdapter(list[ResponsesTool])


def _messages(items: list[dict[str, Any]], instructions: str | None = None) -> list[dict[str, Any]]:
    return to_chat_messages(instructions, ITEMS.validate_python(items)).messages


def test_a_string_is_one_user_message() -> None:
    assert to_chat_messages("Be brief.", input_items("Hi")).messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]


def test_every_input_item_gets_an_id_and_a_given_one_is_kept() -> None:
    items = input_items(
        ITEMS.validate_python(
            [
                {"role": "user", "content": "Hi"},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "ok"},
                {"type": "message", "id": "msg_given", "role": "assistant", "content": "Hello"},
            ]
        )
    )
    assert [item.id.split("_")[0] for item in items[:3]] == ["msg", "fc", "fco"]
    assert items[3].id == "msg_given"
    assert len({item.id for item in items}) == 4


def test_a_listed_message_has_its_text_as_parts() -> None:
    user, assistant = input_items(
        ITEMS.validate_python([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])
    )
    assert listed_item(user) == {
        "type": "message",
        "id": user.id,
        "role": "user",
        "content": [{"type": "input_text", "text": "Hi"}],
        "status": "completed",
    }
    assert listed_item(assistant)["content"] == [{"type": "output_text", "text": "Hello"}]


def test_an_agent_turn_becomes_one_assistant_message_then_tool_messages() -> None:
    messages = _messages(
        [
            {"role": "developer", "content": "Use tools."},
            {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "need a tool"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": '{"city": "Paris"}'},
            {"type": "function_call", "call_id": "c2", "name": "time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "noon"}]},
        ]
    )
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool"]
    assistant = messages[2]
    assert assistant["reasoning_content"] == "need a tool" and assistant["content"] == "Checking."
    assert [call["function"] for call in assistant["tool_calls"]] == [
        {"name": "weather", "arguments": {"city": "Paris"}},  # templates take an object
        {"name": "time", "arguments": {}},
    ]
    assert messages[3] == {"role": "tool", "content": "sunny", "tool_call_id": "c1", "name": "weather"}
    assert messages[4]["content"] == "noon" and messages[4]["name"] == "time"


def test_reasoning_starts_a_new_assistant_turn_and_is_never_dropped() -> None:
    messages = _messages(
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"type": "reasoning", "content": [{"type": "reasoning_text", "text": "thinking"}]},
            {"role": "assistant", "content": "c"},
            {"type": "reasoning", "content": [{"type": "reasoning_text", "text": "trailing"}]},
        ]
    )
    assert [(m["role"], m["content"], m.get("reasoning_content")) for m in messages] == [
        ("user", "a", None),
        ("assistant", "b", None),
        ("assistant", "c", "thinking"),
        ("assistant", "", "trailing"),
    ]


def test_media_parts_name_the_part_and_references_are_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        _messages([{"role": "user", "content": [{"type": "input_text", "text": "x"}, {"type": "input_image"}]}])
    assert caught.value.param == "input[0].content[1]"
    with pytest.raises(UnsupportedParameter) as caught:
        _messages([{"type": "item_reference", "id": "msg_1"}])
    assert caught.value.param == "input[0]"


def test_tools_are_nested_for_the_template() -> None:
    flat = {"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}, "strict": True}
    nested = {"type": "function", "function": {"name": "g"}}
    assert chat_tools(TOOLS.validate_python([flat, nested])) == [
        {"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}},
        nested,
    ]
    assert chat_tools(None) is None
    with pytest.raises(UnsupportedParameter) as caught:
        chat_tools(TOOLS.validate_python([flat, {"type": "file_search"}]))
    assert caught.value.param == "tools[1]"
    with pytest.raises(InvalidRequest) as caught:
        chat_tools(TOOLS.validate_python([{"type": "function"}]))
    assert caught.value.param == "tools[0].name"


def test_output_items_round_trip_into_the_same_messages() -> None:
    outputs = [
        ReasoningOutput(id="rs_1", status="completed", content=[ReasoningContent(text="hmm")]),
        OutputMessage(id="msg_1", status="completed", content=[OutputText(text="Sure.")]),
        FunctionCallOutput(id="fc_1", status="completed", call_id="c1", name="f", arguments='{"a": 1}'),
    ]
    items = [*input_items("go"), *(as_input_item(o) for o in outputs)]
    assert to_chat_messages(None, items).messages[1] == {
        "role": "assistant",
        "content": "Sure.",
        "reasoning_content": "hmm",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}],
    }
