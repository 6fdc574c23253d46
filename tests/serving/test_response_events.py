"""The Responses event builder: item boundaries, indexes, sequence numbers, and the OpenAI SDK's own
types and stream accumulator as the judge of the wire format."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import omit
from openai.lib.streaming.responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from app.parsers.base import ParsedDelta, ToolCallDelta
from app.protocol.chat import TokenLogprob
from app.protocol.response_objects import ResponseError, ResponseObject, ResponseUsage
from app.serving.response_events import ResponseBuilder

SDK_EVENT = TypeAdapter(ResponseStreamEvent)
USAGE = ResponseUsage(input_tokens=7, output_tokens=11, total_tokens=18)


def _builder(logprobs: bool = False) -> ResponseBuilder:
    response = ResponseObject(id="resp_test", created_at=0, status="in_progress", model="org/model@main")
    return ResponseBuilder(response, logprobs=logprobs)


def _wire(events: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(event.model_dump_json(exclude_none=True)) for event in events]


def _through_sdk(wire: list[dict[str, Any]]) -> Any:
    """Validates each event against the SDK's types and runs them through its stream accumulator."""
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    for data in wire:
        state.handle_event(SDK_EVENT.validate_python(data))
    return state._completed_response


def _agent_turn(builder: ResponseBuilder) -> list[Any]:
    events = builder.start()
    events += builder.add([ParsedDelta(reasoning="Think")])
    events += builder.add([ParsedDelta(reasoning="ing."), ParsedDelta(content="Let me ")])
    events += builder.add([ParsedDelta(content="check.")])
    events += builder.add([ParsedDelta(tool_calls=[ToolCallDelta(0, "call_a", "get_weather", '{"location": ')])])
    events += builder.add([ParsedDelta(tool_calls=[ToolCallDelta(0, arguments='"Paris"}')])])
    events += builder.add([ParsedDelta(tool_calls=[ToolCallDelta(1, "call_b", "get_time", "{}")])])
    events += builder.finish("completed", USAGE)
    return events


def test_event_sequence_for_reasoning_text_and_two_calls() -> None:
    wire = _wire(_agent_turn(_builder()))
    assert [e["sequence_number"] for e in wire] == list(range(len(wire)))
    assert [e["type"] for e in wire] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added = [e for e in wire if e["type"] == "response.output_item.added"]
    assert [e["output_index"] for e in added] == [0, 1, 2, 3]
    assert [e["item"]["type"] for e in added] == ["reasoning", "message", "function_call", "function_call"]
    assert [e["item"]["id"][:3] for e in added] == ["rs_", "msg", "fc_", "fc_"]
    assert added[2]["item"] == {
        "type": "function_call",
        "id": added[2]["item"]["id"],
        "status": "in_progress",
        "call_id": "call_a",
        "name": "get_weather",
        "arguments": "",
    }
    first_call = [e for e in wire if e.get("output_index") == 2 and "arguments" in e.get("type", "")]
    assert "".join(e["delta"] for e in first_call[:-1]) == first_call[-1]["arguments"] == '{"location": "Paris"}'
    assert first_call[-1]["name"] == "get_weather"
    final = wire[-1]["response"]
    assert final["status"] == "completed" and final["usage"]["total_tokens"] == 18
    assert [item["status"] for item in final["output"]] == ["completed"] * 4
    assert final["output"][0]["content"] == [{"type": "reasoning_text", "text": "Thinking."}]
    assert final["output"][1]["content"][0]["text"] == "Let me check."


def test_the_sdk_accumulates_the_same_response() -> None:
    builder = _builder()
    wire = _wire(_agent_turn(builder))
    completed = _through_sdk(wire)
    assert completed.id == "resp_test"
    assert [item.type for item in completed.output] == ["reasoning", "message", "function_call", "function_call"]
    assert completed.output_text == "Let me check."
    assert completed.output[2].arguments == '{"location": "Paris"}'


def test_events_are_snapshots() -> None:
    builder = _builder()
    events = builder.start() + builder.add([ParsedDelta(content="a")]) + builder.add([ParsedDelta(content="b")])
    added = next(e for e in _wire(events) if e["type"] == "response.output_item.added")
    assert added["item"]["content"] == [] and added["item"]["status"] == "in_progress"
    assert _wire(events)[0]["response"]["output"] == []


def test_logprobs_go_with_the_first_text_of_a_step() -> None:
    builder = _builder(logprobs=True)
    lp = [TokenLogprob(token="a", logprob=-0.5, bytes=[97], top_logprobs=[])]
    events = builder.start()
    events += builder.add([ParsedDelta(reasoning="r"), ParsedDelta(content="a"), ParsedDelta(content="")], lp)
    events += builder.add([ParsedDelta(content="b")], [])
    events += builder.finish("completed", USAGE)
    wire = _wire(events)
    deltas = [e for e in wire if e["type"] == "response.output_text.delta"]
    assert [d["logprobs"] for d in deltas] == [[lp[0].model_dump()], []]
    assert wire[-1]["response"]["output"][1]["content"][0]["logprobs"] == [lp[0].model_dump()]
    _through_sdk(wire)


@pytest.mark.parametrize("status", ["incomplete", "failed"])
def test_unfinished_responses_close_their_open_item(status: str) -> None:
    builder = _builder()
    events = builder.start() + builder.add([ParsedDelta(content="partial")])
    error = ResponseError(code="server_error", message="boom") if status == "failed" else None
    reason = "max_output_tokens" if status == "incomplete" else None
    events += builder.finish(status, USAGE, incomplete_reason=reason, error=error)  # type: ignore[arg-type]
    wire = _wire(events)
    assert wire[-1]["type"] == f"response.{status}"
    assert wire[-2]["type"] == "response.output_item.done" and wire[-2]["item"]["status"] == "incomplete"
    final = wire[-1]["response"]
    assert final["status"] == status
    if status == "failed":
        assert final["error"] == {"code": "server_error", "message": "boom"}
    else:
        assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    for data in wire:
        SDK_EVENT.validate_python(data)


def test_empty_output_completes_with_no_items() -> None:
    builder = _builder()
    wire = _wire(builder.start() + builder.add([ParsedDelta()]) + builder.finish("completed", USAGE))
    assert [e["type"] for e in wire] == ["response.created", "response.in_progress", "response.completed"]
    assert wire[-1]["response"]["output"] == []
