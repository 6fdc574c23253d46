"""Chat messages → template messages: text joined, media parts kept out of the template's dicts (only
their kind stays, in prompt order), tool-call arguments as objects, and errors naming the part."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from app.errors import HfServeError, InvalidRequest
from app.protocol.chat import ChatMessage
from app.serving.chat_messages import is_media_part, media_ref, to_template_messages, to_template_tools

MESSAGES = TypeAdapter(list[ChatMessage])


def _prompt(messages: list[dict[str, Any]], params: dict[int, str] | None = None):  # type: ignore[no-untyped-def]
    return to_template_messages(MESSAGES.validate_python(messages), params)


def test_text_parts_are_joined_and_developer_is_system() -> None:
    prompt = _prompt(
        [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": None, "tool_calls": []},
        ]
    )
    assert prompt.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "a\nb"},
        {"role": "assistant", "content": "", "tool_calls": []},
    ]
    assert prompt.media == []


def test_media_parts_leave_only_their_kind_in_the_template() -> None:
    prompt = _prompt(
        [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    {"type": "text", "text": "and"},
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                ],
            },
            {"role": "user", "content": [{"type": "video_url", "video_url": {"url": "data:,x", "num_frames": 4}}]},
        ]
    )
    assert prompt.messages[0]["content"] == [{"type": "image"}, {"type": "text", "text": "and"}, {"type": "audio"}]
    assert prompt.messages[1]["content"] == [{"type": "video"}]
    assert [(ref.kind, ref.param) for ref in prompt.media] == [
        ("image", "messages[0].content[0]"),
        ("audio", "messages[0].content[2]"),
        ("video", "messages[1].content[0]"),
    ]
    assert prompt.media[0].url == "https://example.com/a.png" and prompt.media[1].format == "wav"
    assert prompt.media[2].num_frames == 4


def test_tool_call_arguments_become_objects_when_they_are_json() -> None:
    calls = [
        {"id": "1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
        {"id": "2", "type": "function", "function": {"name": "g", "arguments": "not json"}},
    ]
    message = _prompt([{"role": "assistant", "content": "", "tool_calls": calls}]).messages[0]
    assert [call["function"]["arguments"] for call in message["tool_calls"]] == [{"a": 1}, "not json"]


def test_errors_name_the_part_by_the_given_params() -> None:
    with pytest.raises(InvalidRequest) as caught:
        _prompt([{"role": "user", "content": [{"type": "file", "file": {}}]}])
    assert caught.value.param == "messages[0].content[0]"
    with pytest.raises(InvalidRequest) as caught:
        _prompt([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], {0: "input[3].content"})
    assert caught.value.param == "input[3].content[0]"


def test_media_refs_are_checked_as_they_are_recognised() -> None:
    assert media_ref({"type": "text", "text": "x"}, "p") is None
    assert is_media_part("input_image") and not is_media_part("input_text")
    ref = media_ref({"type": "input_image", "image_url": "https://example.com/a.png"}, "p")
    assert ref is not None and ref.kind == "image" and ref.part_type == "input_image"
    with pytest.raises(InvalidRequest) as caught:
        media_ref({"type": "input_audio", "input_audio": {}}, "p")
    assert caught.value.param == "p.input_audio.data"
    with pytest.raises(InvalidRequest) as caught:
        media_ref({"type": "input_image", "file_id": "f"}, "p")
    assert caught.value.param == "p.file_id"
    with pytest.raises(InvalidRequest) as caught:
        media_ref({"type": "video_url", "video_url": {"url": "data:,x", "fps": 0}}, "p")
    assert caught.value.param == "p.video_url.fps"


def test_template_tools_keep_what_the_model_is_told() -> None:
    parameters = {"type": "object", "properties": {"city": {"type": "string"}}}
    tools = [
        {"type": "function", "function": {"name": "f", "description": "d", "parameters": parameters, "strict": False}}
    ]
    assert to_template_tools(tools) == [
        {"type": "function", "function": {"name": "f", "description": "d", "parameters": parameters}}
    ]
    assert to_template_tools([{"function": {"name": "g"}}]) == [{"type": "function", "function": {"name": "g"}}]
    assert to_template_tools(None) is None and to_template_tools([]) is None


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        ({"type": "code_interpreter"}, "tools[0].type"),
        ({"type": "function"}, "tools[0].function"),
        ({"type": "function", "function": {"description": "no name"}}, "tools[0].function"),
    ],
)
def test_template_tools_refuse_what_is_not_a_named_function(tool: dict, param: str) -> None:
    with pytest.raises(HfServeError) as caught:
        to_template_tools([tool])
    assert (caught.value.status, caught.value.param) == (400, param)
