"""MessageBuilder: parsed deltas → content blocks and Anthropic stream events, and a stream that adds up to
the message itself."""

from __future__ import annotations

import json
from typing import Any

from app.parsers.base import ParsedDelta, ToolCallDelta
from app.protocol.anthropic_objects import Message, MessageUsage
from app.serving.anthropic_events import MessageBuilder, thinking_signature, tool_input


def _builder() -> MessageBuilder:
    return MessageBuilder(Message(id="msg_1", model="m", usage=MessageUsage(input_tokens=7, output_tokens=0)))


def _wire(events: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(event.model_dump_json(exclude_none=True)) for event in events]


def _fold(events: list[dict[str, Any]]) -> dict[str, Any]:
    """A stream read as a client reads it: the start's message, blocks as started, deltas appended."""
    message: dict[str, Any] = {}
    partial: dict[int, str] = {}
    for event in events:
        kind = event["type"]
        if kind == "message_start":
            message = event["message"]
        elif kind == "content_block_start":
            message["content"].append(event["content_block"])
        elif kind == "content_block_delta":
            block, delta = message["content"][event["index"]], event["delta"]
            if delta["type"] == "input_json_delta":
                partial[event["index"]] = partial.get(event["index"], "") + delta["partial_json"]
            else:
                field = {"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "signature"}
                name = field[delta["type"]]
                block[name] += delta[name]
        elif kind == "content_block_stop" and event["index"] in partial:
            message["content"][event["index"]]["input"] = json.loads(partial[event["index"]])
        elif kind == "message_delta":
            message.update(event["delta"])
            message["usage"].update(event["usage"])
    return message


SCRIPT = [
    [ParsedDelta(reasoning="Let me")],
    [ParsedDelta(reasoning=" check.")],
    [ParsedDelta(content="Checking.")],
    [ParsedDelta(tool_calls=[ToolCallDelta(0, id="call_a", name="get_weather")])],
    [ParsedDelta(tool_calls=[ToolCallDelta(0, arguments='{"location": ')])],
    [ParsedDelta(tool_calls=[ToolCallDelta(0, arguments='"Paris"}')])],
    [ParsedDelta(tool_calls=[ToolCallDelta(1, id="call_b", name="get_time", arguments="{}")])],
]


def _run() -> tuple[MessageBuilder, list[Any]]:
    builder = _builder()
    events = builder.start()
    for deltas in SCRIPT:
        events += builder.add(deltas)
    events += builder.finish("tool_use", None, MessageUsage(input_tokens=7, output_tokens=30))
    return builder, events


def test_blocks_open_and_close_in_order_with_their_deltas() -> None:
    _, events = _run()
    kinds = [
        (e["type"], e.get("index"), (e.get("delta") or e.get("content_block") or {}).get("type")) for e in _wire(events)
    ]
    assert kinds == [
        ("message_start", None, None),
        ("ping", None, None),
        ("content_block_start", 0, "thinking"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "signature_delta"),  # as Anthropic sends it: last, before the stop
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, "tool_use"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2, None),
        ("content_block_start", 3, "tool_use"),
        ("content_block_delta", 3, "input_json_delta"),
        ("content_block_stop", 3, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]


def test_the_message_holds_the_blocks_the_events_describe() -> None:
    builder, events = _run()
    message = json.loads(builder.message.model_dump_json(exclude_none=True))
    assert message["content"] == [
        {"type": "thinking", "thinking": "Let me check.", "signature": thinking_signature("Let me check.")},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"location": "Paris"}},
        {"type": "tool_use", "id": "call_b", "name": "get_time", "input": {}},
    ]
    assert (message["stop_reason"], message["stop_sequence"]) == ("tool_use", None)
    assert message["usage"] == {"input_tokens": 7, "output_tokens": 30}
    assert builder.called
    assert _fold(_wire(events)) == message


def test_events_are_snapshots_later_deltas_never_change() -> None:
    builder = _builder()
    [start, _] = builder.start()
    [opened, _] = builder.add([ParsedDelta(content="a")])
    builder.add([ParsedDelta(content="b")])
    assert start.message.content == [] and opened.content_block.text == ""  # type: ignore[union-attr]


def test_start_reports_null_stop_fields_and_the_prompt_tokens() -> None:
    [start, ping] = _wire(_builder().start())
    assert start["message"]["stop_reason"] is None and start["message"]["stop_sequence"] is None
    assert start["message"]["usage"] == {"input_tokens": 7, "output_tokens": 0}
    assert ping == {"type": "ping"}


def test_stop_sequence_in_the_message_delta() -> None:
    builder = _builder()
    builder.start()
    builder.add([ParsedDelta(content="The capital is ")])
    events = _wire(builder.finish("stop_sequence", "Paris", MessageUsage(input_tokens=7, output_tokens=4)))
    assert events[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "Paris"}
    assert events[-1] == {"type": "message_stop"}


def test_an_empty_answer_has_no_blocks() -> None:
    builder = _builder()
    builder.start()
    events = _wire(builder.finish("end_turn", None, MessageUsage(input_tokens=7, output_tokens=1)))
    assert [e["type"] for e in events] == ["message_delta", "message_stop"]
    assert builder.message.content == [] and not builder.called


def test_tool_input_of_a_cut_short_call_is_empty() -> None:
    assert tool_input('{"location": "Par') == {}
    assert tool_input("") == {}
    assert tool_input("[1]") == {}
    assert tool_input('{"a": 1}') == {"a": 1}
