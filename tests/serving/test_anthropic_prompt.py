"""An Anthropic Messages request → the chat prompt, tools, tool choice and template switches."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import InvalidRequest, UnsupportedParameter
from app.protocol.anthropic import CountTokensRequest
from app.serving.anthropic_prompt import to_chat_input

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city.",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
}
PNG_B64 = "iVBORw0KGgo="


def _input(**body: Any):
    body.setdefault("messages", [{"role": "user", "content": "Hi"}])
    return to_chat_input(CountTokensRequest.model_validate(body))


def test_system_as_a_string_or_blocks_is_one_system_message() -> None:
    assert _input(system="Be brief.").prompt.messages[0] == {"role": "system", "content": "Be brief."}
    blocks = [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind.", "cache_control": {}}]
    assert _input(system=blocks).prompt.messages[0] == {"role": "system", "content": "Be brief.\n\nBe kind."}


def test_text_blocks_join_and_images_become_media_refs() -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
    ]
    prompt = _input(messages=[{"role": "user", "content": content}]).prompt
    assert prompt.messages == [
        {"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image"}, {"type": "image"}]}
    ]
    assert [ref.url for ref in prompt.media] == [f"data:image/png;base64,{PNG_B64}", "https://example.com/cat.png"]
    assert prompt.media[0].param == "messages[0].content[1]"


def test_a_tool_round_trip_becomes_tool_calls_and_tool_messages() -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Use the tool.", "signature": "x"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "18C"}]},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "no such city", "is_error": True},
                {"type": "text", "text": "Thanks"},
            ],
        },
    ]
    chat = _input(messages=messages, tools=[WEATHER])
    assert chat.prompt.messages[1:] == [
        {
            "role": "assistant",
            "content": "Checking.",
            "reasoning_content": "Use the tool.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"location": "Paris"}},
                }
            ],
        },
        {"role": "tool", "content": "18C", "tool_call_id": "call_1"},
        {"role": "tool", "content": "Error: no such city", "tool_call_id": "call_2"},
        {"role": "user", "content": "Thanks"},
    ]
    assert chat.tools == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city.",
                "parameters": WEATHER["input_schema"],
            },
        }
    ]


def test_a_tool_results_images_follow_in_a_user_message() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/shot.png"}}
    content = [{"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "done"}, image]}]
    prompt = _input(messages=[{"role": "user", "content": content}]).prompt
    assert prompt.messages == [
        {"role": "tool", "content": "done", "tool_call_id": "call_1"},
        {"role": "user", "content": [{"type": "image"}]},
    ]
    assert [ref.url for ref in prompt.media] == ["https://example.com/shot.png"]


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, "auto", True),
        ({"type": "any"}, "required", True),
        ({"type": "none"}, "none", True),
        ({"type": "any", "disable_parallel_tool_use": True}, "required", False),
        ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}, True),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any, parallel: bool) -> None:
    chat = _input(tools=[WEATHER], tool_choice=choice)
    assert (chat.tool_choice, chat.parallel_tool_calls) == (expected, parallel)


def test_a_named_tool_must_be_offered() -> None:
    with pytest.raises(InvalidRequest) as exc:
        _input(tools=[WEATHER], tool_choice={"type": "tool", "name": "get_time"})
    assert exc.value.param == "tool_choice.name"


def test_server_tools_are_refused() -> None:
    with pytest.raises(UnsupportedParameter) as exc:
        _input(tools=[WEATHER, {"type": "web_search_20250305", "name": "web_search"}])
    assert exc.value.param == "tools[1]"


@pytest.mark.parametrize(
    ("thinking", "kwargs"),
    [
        (None, {}),
        ({"type": "enabled", "budget_tokens": 2048}, {"enable_thinking": True}),
        ({"type": "disabled"}, {"enable_thinking": False}),
        ({"type": "adaptive"}, {}),
    ],
)
def test_thinking_is_the_templates_reasoning_switch(thinking: dict[str, Any] | None, kwargs: dict[str, Any]) -> None:
    assert _input(thinking=thinking).template_kwargs == kwargs


def test_a_last_assistant_turn_is_continued() -> None:
    messages = [{"role": "user", "content": "Count"}, {"role": "assistant", "content": "1, 2,"}]
    assert _input(messages=messages).template_kwargs == {"continue_final_message": True}


@pytest.mark.parametrize(
    ("message", "param"),
    [
        (
            {"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}]},
            "messages[0].content[0]",
        ),
        ({"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "a"}]}, "messages[0].content[0]"),
        (
            {"role": "user", "content": [{"type": "image", "source": {"type": "url"}}]},
            "messages[0].content[0].source.url",
        ),
        (
            {"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]},
            "messages[0].content[0].source",
        ),
    ],
)
def test_blocks_out_of_place_are_refused_by_name(message: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        _input(messages=[message])
    assert exc.value.param == param
