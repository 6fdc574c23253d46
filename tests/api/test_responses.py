"""/v1/responses end to end: the official client (create, stream helper, retrieve, delete), raw SSE,
multi-turn through items and previous_response_id, and the error cases."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from httpx_sse import connect_sse
from openai import OpenAI
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from app.demo.canned_chats import CANNED_CHATS, CAPITAL_ANSWER, WEATHER_TOOL
from tests.fixtures.tiny_models import CHAT_MODEL_ID, NEVER_EOS_MODEL_ID
from tests.support.server import ServerProcess

NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}
CAPITAL_Q = "What is the capital of France?"
WEATHER_FUNCTION = {"type": "function", **WEATHER_TOOL["function"]}  # the Responses API's flat tool form


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def _canned(name: str) -> dict[str, Any]:
    return next(chat for chat in CANNED_CHATS if chat["name"] == name)


def _events(server: ServerProcess, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    with (
        httpx.Client(timeout=60) as http,
        connect_sse(http, "POST", f"{server.base_url}/responses", json={**body, "stream": True}) as source,
    ):
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return [(sse.event, json.loads(sse.data)) for sse in source.iter_sse()]


def test_non_stream_shape_and_echoes(client: OpenAI) -> None:
    response = client.responses.create(
        model=CHAT_MODEL_ID, input=CAPITAL_Q, temperature=0, top_p=0.9, extra_body=NO_THINKING
    )
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.status == "completed" and response.error is None and response.incomplete_details is None
    assert response.model == f"{CHAT_MODEL_ID}@main"
    assert [item.type for item in response.output] == ["message"]
    message = response.output[0]
    assert message.id.startswith("msg_") and message.role == "assistant" and message.status == "completed"
    assert [part.type for part in message.content] == ["output_text"]
    assert response.output_text == CAPITAL_ANSWER
    assert (response.temperature, response.top_p, response.max_output_tokens) == (0, 0.9, None)
    assert (response.tools, response.tool_choice, response.parallel_tool_calls) == ([], "auto", True)
    assert response.instructions is None and response.store is True
    usage = response.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.output_tokens_details.reasoning_tokens == 0
    cached = usage.input_tokens_details.cached_tokens  # earlier tests may have sent this prompt: whole blocks of it
    assert cached % 16 == 0 and cached < usage.input_tokens


def test_wire_keeps_openai_nulls(server: ServerProcess) -> None:
    body = {"model": CHAT_MODEL_ID, "input": "Hello", **NO_THINKING}
    raw = httpx.post(f"{server.base_url}/responses", json=body, timeout=60).json()
    for key in ("error", "incomplete_details", "instructions", "previous_response_id", "user"):
        assert key in raw and raw[key] is None


def test_stream_event_sequence_matches_non_stream(client: OpenAI, server: ServerProcess) -> None:
    body = {"model": CHAT_MODEL_ID, "input": CAPITAL_Q, "temperature": 0, **NO_THINKING}
    whole = client.responses.create(model=CHAT_MODEL_ID, input=CAPITAL_Q, temperature=0, extra_body=NO_THINKING)
    events = _events(server, body)
    names = [name for name, _ in events]
    assert all(name == data["type"] for name, data in events)
    for _, data in events:
        TypeAdapter(ResponseStreamEvent).validate_python(data)  # the SDK's own wire types
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    deltas = names.count("response.output_text.delta")
    assert deltas >= 2
    assert names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    data = [d for _, d in events]
    created, item_added, done_item, completed = data[0], data[2], data[-2], data[-1]
    assert created["response"]["status"] == "in_progress" and created["response"]["output"] == []
    item_id = item_added["item"]["id"]
    assert all(d.get("item_id", item_id) == item_id for d in data[2:-1])
    assert {d["output_index"] for d in data[2:-1]} == {0}
    text = "".join(d["delta"] for d in data if d["type"] == "response.output_text.delta")
    assert text == data[-4]["text"] == done_item["item"]["content"][0]["text"] == CAPITAL_ANSWER
    streamed = completed["response"]
    assert streamed["id"] == created["response"]["id"] and streamed["status"] == "completed"
    assert streamed["output"] == [done_item["item"]]
    as_sdk = Response.model_validate(streamed).model_dump()
    non_stream = whole.model_dump()
    for key in ("id", "created_at"):
        as_sdk.pop(key), non_stream.pop(key)
    as_sdk["output"][0].pop("id"), non_stream["output"][0].pop("id")
    # the streamed request came second: its prompt's full blocks came from the prefix cache
    cached = [body["usage"]["input_tokens_details"].pop("cached_tokens") for body in (non_stream, as_sdk)]
    assert cached[1] == (streamed["usage"]["input_tokens"] - 1) // 16 * 16
    assert as_sdk == non_stream


def test_stream_helper_final_response(client: OpenAI) -> None:
    with client.responses.stream(model=CHAT_MODEL_ID, input="Hello", temperature=0, extra_body=NO_THINKING) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text
    assert final.status == "completed" and final.output_text.startswith("Hello!")


def test_max_output_tokens_gives_incomplete(client: OpenAI, server: ServerProcess) -> None:
    response = client.responses.create(model=NEVER_EOS_MODEL_ID, input="count", max_output_tokens=5)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert response.usage.output_tokens == 5 and response.max_output_tokens == 5
    assert response.output[0].status == "incomplete"
    events = _events(server, {"model": NEVER_EOS_MODEL_ID, "input": "count", "max_output_tokens": 5})
    assert events[-1][0] == "response.incomplete"
    assert events[-1][1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_instructions_become_the_system_turn(client: OpenAI) -> None:
    instructions = "Answer briefly."
    response = client.responses.create(
        model=CHAT_MODEL_ID, input=CAPITAL_Q, instructions=instructions, temperature=0, extra_body=NO_THINKING
    )
    chat = client.chat.completions.create(
        model=CHAT_MODEL_ID,
        messages=[{"role": "system", "content": instructions}, {"role": "user", "content": CAPITAL_Q}],
        temperature=0,
        extra_body=NO_THINKING,
    )
    assert response.instructions == instructions
    assert response.usage.input_tokens == chat.usage.prompt_tokens
    assert response.output_text == chat.choices[0].message.content


def test_chat_template_kwargs_reach_the_template(client: OpenAI) -> None:
    thinking = client.responses.create(model=CHAT_MODEL_ID, input=CAPITAL_Q, max_output_tokens=1)
    plain = client.responses.create(model=CHAT_MODEL_ID, input=CAPITAL_Q, max_output_tokens=1, extra_body=NO_THINKING)
    assert plain.usage.input_tokens > thinking.usage.input_tokens  # the empty <think></think> block


@pytest.mark.parametrize("name", ["Alice", "Bob"])
def test_multi_turn_items(client: OpenAI, name: str) -> None:
    items = [
        {"role": "user", "content": f"My name is {name}."},  # EasyInputMessage, no type
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": f"Nice to meet you, {name}!"}],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What is my name?"}]},
    ]
    response = client.responses.create(model=CHAT_MODEL_ID, input=items, temperature=0)
    assert response.output_text == _canned(f"name-{name.lower()}")["content"]


def test_tool_round_trip_through_items(client: OpenAI) -> None:
    canned = _canned("weather-tool-result")
    call = canned["messages"][1]["tool_calls"][0]
    items = [
        {"role": "user", "content": canned["messages"][0]["content"]},
        {
            "type": "function_call",
            "call_id": call["id"],
            "name": call["function"]["name"],
            "arguments": call["function"]["arguments"],
        },
        {"type": "function_call_output", "call_id": call["id"], "output": canned["messages"][2]["content"]},
    ]
    response = client.responses.create(model=CHAT_MODEL_ID, input=items, tools=[WEATHER_FUNCTION], temperature=0)
    assert response.output_text == canned["content"]
    assert response.tools[0].name == "get_weather"
    chat = client.chat.completions.create(
        model=CHAT_MODEL_ID, messages=canned["messages"], tools=[WEATHER_TOOL], temperature=0
    )
    assert response.usage.input_tokens == chat.usage.prompt_tokens


def test_reasoning_items_reach_the_template(client: OpenAI) -> None:
    canned = _canned("weather-tool-result")
    call = canned["messages"][1]["tool_calls"][0]
    thought = "The user wants the weather, so I call the tool."
    function_call = {
        "type": "function_call",
        "call_id": "call_0",
        "name": "get_weather",
        "arguments": call["function"]["arguments"],
    }
    output = {"type": "function_call_output", "call_id": "call_0", "output": canned["messages"][2]["content"]}
    reasoning = {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": thought}],
    }
    question = {"role": "user", "content": canned["messages"][0]["content"]}
    with_reasoning = client.responses.create(
        model=CHAT_MODEL_ID,
        input=[question, reasoning, function_call, output],
        tools=[WEATHER_FUNCTION],
        max_output_tokens=1,
    )
    messages = [*canned["messages"]]
    messages[1] = {**messages[1], "reasoning_content": thought}
    chat = client.chat.completions.create(model=CHAT_MODEL_ID, messages=messages, tools=[WEATHER_TOOL], max_tokens=1)
    without = client.chat.completions.create(
        model=CHAT_MODEL_ID, messages=canned["messages"], tools=[WEATHER_TOOL], max_tokens=1
    )
    assert with_reasoning.usage.input_tokens == chat.usage.prompt_tokens > without.usage.prompt_tokens


def test_previous_response_id_continues_the_conversation(client: OpenAI) -> None:
    first = client.responses.create(model=CHAT_MODEL_ID, input="My name is Alice.", temperature=0, max_output_tokens=12)
    follow = client.responses.create(
        model=CHAT_MODEL_ID, input="What is my name?", previous_response_id=first.id, temperature=0
    )
    assert follow.previous_response_id == first.id
    chat = client.chat.completions.create(
        model=CHAT_MODEL_ID,
        messages=[
            {"role": "user", "content": "My name is Alice."},
            {"role": "assistant", "content": first.output_text},
            {"role": "user", "content": "What is my name?"},
        ],
        temperature=0,
    )
    assert follow.usage.input_tokens == chat.usage.prompt_tokens
    assert follow.output_text == chat.choices[0].message.content
    # A third turn goes back through both earlier ones.
    third = client.responses.create(
        model=CHAT_MODEL_ID, input="Thanks", previous_response_id=follow.id, max_output_tokens=1
    )
    assert third.usage.input_tokens > follow.usage.input_tokens + follow.usage.output_tokens


def test_retrieve_and_delete(client: OpenAI) -> None:
    created = client.responses.create(model=CHAT_MODEL_ID, input="Hello", max_output_tokens=3)
    fetched = client.responses.retrieve(created.id)
    assert fetched.model_dump() == created.model_dump()
    deleted = client.responses.delete(created.id)
    assert deleted is None  # the SDK returns nothing for a 200
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)


def test_input_items_list_every_item_that_led_to_a_response(client: OpenAI) -> None:
    first = client.responses.create(
        model=CHAT_MODEL_ID, input="My name is Alice.", instructions="Be brief.", temperature=0, max_output_tokens=4
    )
    items = [
        {"role": "user", "content": "What is my name?"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Please answer."}]},
    ]
    follow = client.responses.create(
        model=CHAT_MODEL_ID, input=items, previous_response_id=first.id, temperature=0, max_output_tokens=4
    )
    newest_first = client.responses.input_items.list(follow.id)
    assert newest_first.object == "list" and newest_first.has_more is False
    texts = [[part.text for part in item.content] for item in newest_first.data]
    assert texts == [["Please answer."], ["What is my name?"], [first.output_text], ["My name is Alice."]]
    assert [item.role for item in newest_first.data] == ["user", "user", "assistant", "user"]
    assert newest_first.data[2].id == first.output[0].id  # the earlier output keeps its id
    assert all(item.id.startswith("msg_") for item in newest_first.data)
    assert (newest_first.first_id, newest_first.last_id) == (newest_first.data[0].id, newest_first.data[-1].id)
    assert client.responses.input_items.list(first.id).data[0].content[0].type == "input_text"

    oldest_first = client.responses.input_items.list(follow.id, order="asc", limit=3)
    assert [item.id for item in oldest_first.data] == [item.id for item in reversed(newest_first.data)][:3]
    assert oldest_first.has_more is True
    rest = client.responses.input_items.list(follow.id, order="asc", limit=3, after=oldest_first.last_id)
    assert [item.id for item in rest.data] == [newest_first.data[0].id] and rest.has_more is False
    paged = list(client.responses.input_items.list(follow.id, limit=1))  # the SDK's auto-pagination
    assert [item.id for item in paged] == [item.id for item in newest_first.data]
    included = client.responses.input_items.list(follow.id, include=["message.input_image.image_url"])
    assert len(included.data) == 4


def test_input_items_errors(client: OpenAI, server: ServerProcess) -> None:
    created = client.responses.create(model=CHAT_MODEL_ID, input="Hello", max_output_tokens=2)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.input_items.list("resp_unknown")
    assert caught.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.input_items.list(created.id, after="msg_unknown")
    assert caught.value.body["param"] == "after"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.input_items.list(created.id, include=["file_search_call.results"])
    assert caught.value.body["param"] == "include"
    for query in ({"limit": 0}, {"limit": 101}, {"order": "sideways"}):
        answer = httpx.get(f"{server.base_url}/responses/{created.id}/input_items", params=query)
        assert answer.status_code == 400 and answer.json()["error"]["type"] == "invalid_request_error"


def test_unstored_and_unknown_ids_are_404(client: OpenAI) -> None:
    unstored = client.responses.create(model=CHAT_MODEL_ID, input="Hello", max_output_tokens=2, store=False)
    assert unstored.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=CHAT_MODEL_ID, input="Hi", previous_response_id=unstored.id)
    assert caught.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_unknown")


def test_logprobs(client: OpenAI, server: ServerProcess) -> None:
    body = {"include": ["message.output_text.logprobs"], "top_logprobs": 2, "temperature": 0}
    response = client.responses.create(model=NEVER_EOS_MODEL_ID, input="count", max_output_tokens=4, **body)
    logprobs = response.output[0].content[0].logprobs
    assert len(logprobs) == 4 and all(len(lp.top_logprobs) == 2 for lp in logprobs)
    assert "".join(lp.token for lp in logprobs) == response.output_text
    events = _events(server, {"model": NEVER_EOS_MODEL_ID, "input": "count", "max_output_tokens": 4, **body})
    streamed = [lp for _, d in events if d["type"] == "response.output_text.delta" for lp in d["logprobs"]]
    assert [lp["token"] for lp in streamed] == [lp.token for lp in logprobs]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"n": 2}, "n"),
        ({"background": True}, "background"),
        ({"text": {"format": {"type": "json_schema", "schema": {"not": {}}}}}, "text.format.schema"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"include": ["file_search_call.results"]}, "include"),
        ({"input": []}, "input"),
        ({"input": [{"type": "mystery"}]}, "input[0]"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:,"}]}]},
            "input[0].content[0]",
        ),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        ({"input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"temperature": 3}, "temperature"),
    ],
)
def test_bad_requests_are_400_naming_the_param(server: ServerProcess, body: dict[str, Any], param: str) -> None:
    reply = httpx.post(f"{server.base_url}/responses", json={"model": CHAT_MODEL_ID, "input": "Hi", **body}, timeout=30)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_unknown_model_is_404(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="nobody/nothing", input="Hi")
