"""Tool calls, reasoning and structured output end to end, chat and responses, stream and not, with the
trained tiny chat model (it emits Qwen3's `<think>` spans and `<tool_call>` JSON) and the official
`openai` client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from huggingface_hub import InferenceClient
from openai import OpenAI

from app.demo.canned_chats import CANNED_CHATS, CAPITAL_ANSWER, WEATHER_TOOL
from tests.fixtures.tiny_models import CHAT_MODEL_ID, NEVER_EOS_MODEL_ID
from tests.support.chat_stream import stream_chat
from tests.support.server import ServerProcess, run_server

NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}
THINKING = {"chat_template_kwargs": {"enable_thinking": True}}
WEATHER_FUNCTION = {"type": "function", **WEATHER_TOOL["function"]}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"enum": ["UTC", "CET"]}},
            "required": ["zone"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def _canned(name: str) -> dict[str, Any]:
    return next(chat for chat in CANNED_CHATS if chat["name"] == name)


WEATHER = _canned("weather-tool-call")


# -- chat ---------------------------------------------------------------------------------------------


def test_chat_tool_call_non_stream(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model=CHAT_MODEL_ID, messages=WEATHER["messages"], tools=[WEATHER_TOOL], temperature=0
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris"}


def test_chat_tool_call_stream_reassembles_to_the_non_stream_result(client: OpenAI) -> None:
    kwargs = {"model": CHAT_MODEL_ID, "messages": WEATHER["messages"], "tools": [WEATHER_TOOL], "temperature": 0}
    whole = client.chat.completions.create(**kwargs).choices[0].message.tool_calls[0]
    message, chunks = stream_chat(client, **kwargs)
    assert message["finish_reason"] == "tool_calls" and message["content"] == ""
    [call] = message["tool_calls"].values()
    assert (call["name"], call["arguments"]) == (whole.function.name, whole.function.arguments)
    fragments = [c for chunk in chunks for ch in chunk.choices for c in ch.delta.tool_calls or [] if not c.id]
    assert len(fragments) >= 2, "arguments arrive as incremental deltas"
    assert all("<tool_call>" not in (ch.delta.content or "") for chunk in chunks for ch in chunk.choices)


def test_reasoning_is_separated(client: OpenAI) -> None:
    canned = _canned("capital-thinking")
    kwargs = {"model": CHAT_MODEL_ID, "messages": canned["messages"], "temperature": 0, "extra_body": THINKING}
    message = client.chat.completions.create(**kwargs).choices[0].message
    assert (message.reasoning_content, message.content) == (canned["reasoning"], CAPITAL_ANSWER)
    streamed, chunks = stream_chat(client, **kwargs)
    assert (streamed["reasoning_content"], streamed["content"]) == (canned["reasoning"], CAPITAL_ANSWER)
    for chunk in chunks:
        for choice in chunk.choices:
            assert "think>" not in (choice.delta.content or "") + (getattr(choice.delta, "reasoning_content", "") or "")


@pytest.mark.parametrize(
    ("stop", "content"),
    [
        (["\n\n"], CAPITAL_ANSWER),  # the reasoning has its own blank line before the answer
        (["Paris"], "The capital of France is "),  # "Paris" is in the reasoning too
    ],
)
def test_stop_strings_apply_to_the_content_not_the_reasoning(client: OpenAI, stop: list[str], content: str) -> None:
    canned = _canned("capital-thinking")
    kwargs = {
        "model": CHAT_MODEL_ID,
        "messages": canned["messages"],
        "temperature": 0,
        "stop": stop,
        "extra_body": THINKING,
    }
    choice = client.chat.completions.create(**kwargs).choices[0]
    assert (choice.message.reasoning_content, choice.message.content) == (canned["reasoning"], content)
    assert choice.finish_reason == "stop"
    streamed, _ = stream_chat(client, **kwargs)
    assert (streamed["reasoning_content"], streamed["content"]) == (canned["reasoning"], content)
    response = client.responses.create(
        model=CHAT_MODEL_ID, input=canned["messages"], temperature=0, extra_body={**THINKING, "stop": stop}
    )
    assert response.output_text == content


def test_chat_usage_counts_reasoning_tokens_as_responses_does(client: OpenAI) -> None:
    canned = _canned("capital-thinking")
    kwargs = {"model": CHAT_MODEL_ID, "messages": canned["messages"], "temperature": 0, "extra_body": THINKING}
    chat = client.chat.completions.create(**kwargs)
    reasoning = chat.usage.completion_tokens_details.reasoning_tokens
    assert 0 < reasoning < chat.usage.completion_tokens  # the answer's tokens are not reasoning
    last = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs))[-1]
    assert last.usage.completion_tokens_details.reasoning_tokens == reasoning
    response = client.responses.create(
        model=CHAT_MODEL_ID, input=canned["messages"], temperature=0, extra_body=THINKING
    )
    assert response.usage.output_tokens_details.reasoning_tokens == reasoning
    plain = client.chat.completions.create(
        model=CHAT_MODEL_ID,
        messages=canned["messages"],
        temperature=0,
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
    )
    assert plain.usage.completion_tokens_details.reasoning_tokens == 0


def test_tool_round_trip(client: OpenAI) -> None:
    first = client.chat.completions.create(
        model=CHAT_MODEL_ID, messages=WEATHER["messages"], tools=[WEATHER_TOOL], temperature=0
    )
    call = first.choices[0].message.tool_calls[0]
    messages = [
        *WEATHER["messages"],
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 18, "condition": "sunny"}'},
    ]
    answer = client.chat.completions.create(model=CHAT_MODEL_ID, messages=messages, tools=[WEATHER_TOOL], temperature=0)
    assert answer.choices[0].message.content == _canned("weather-tool-result")["content"]
    assert answer.choices[0].finish_reason == "stop"


def test_tool_choice_none_offers_no_tools(client: OpenAI) -> None:
    kwargs = {"model": CHAT_MODEL_ID, "messages": WEATHER["messages"], "tools": [WEATHER_TOOL], "max_tokens": 1}
    offered = client.chat.completions.create(**kwargs)
    withheld = client.chat.completions.create(**kwargs, tool_choice="none")
    assert withheld.usage.prompt_tokens < offered.usage.prompt_tokens


# The tiny model was never trained to call a tool unasked, so a forced call's free text is bounded here
# (a weak model may otherwise write one string until max_tokens), and one call is asked for: after a
# call the grammar allows EOS or another call, and only a trained model knows when to stop.
BOUNDED_WEATHER = json.loads(json.dumps(WEATHER_TOOL))
BOUNDED_WEATHER["function"]["parameters"]["properties"]["location"]["maxLength"] = 12
BOUNDED_WEATHER["function"]["parameters"]["additionalProperties"] = False


@pytest.mark.parametrize("stream", [False, True])
def test_tool_choice_required_forces_a_valid_call(client: OpenAI, stream: bool) -> None:
    kwargs: dict[str, Any] = {
        "model": CHAT_MODEL_ID,
        "messages": [{"role": "user", "content": "Hello"}],  # the model would just greet
        "tools": [BOUNDED_WEATHER, TIME_TOOL],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "temperature": 0,
        "max_tokens": 200,
        "extra_body": NO_THINKING,
    }
    if stream:
        message, _ = stream_chat(client, **kwargs)
        calls = [(c["name"], c["arguments"]) for c in message["tool_calls"].values()]
        finish = message["finish_reason"]
    else:
        choice = client.chat.completions.create(**kwargs).choices[0]
        calls = [(c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]
        finish = choice.finish_reason
    assert finish == "tool_calls" and len(calls) == 1
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in (BOUNDED_WEATHER, TIME_TOOL)}
    for name, arguments in calls:
        jsonschema.validate(json.loads(arguments), schemas[name])


def test_named_tool_choice(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model=CHAT_MODEL_ID,
        messages=WEATHER["messages"],
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        parallel_tool_calls=False,
        temperature=0,
        max_tokens=200,
    )
    [call] = completion.choices[0].message.tool_calls
    assert call.function.name == "get_time"  # the model itself would call get_weather here
    assert json.loads(call.function.arguments)["zone"] in ("UTC", "CET")


SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 20},
        "population": {"type": "integer", "minimum": 0, "maximum": 10**8},
        "capital": {"type": "boolean"},
    },
    "required": ["city", "population", "capital"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("model", [CHAT_MODEL_ID, NEVER_EOS_MODEL_ID])
def test_json_schema_output_validates(client: OpenAI, model: str) -> None:
    completion = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Tell me about Paris."}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA, "strict": True}},
        max_tokens=200,
        extra_body=NO_THINKING,
    )
    assert completion.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(completion.choices[0].message.content), SCHEMA)


def test_huggingface_hub_response_format_with_a_schema_is_enforced(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """InferenceClient sends TGI's form, ``{"type": "json_object", "value": <schema>}``: the schema holds."""
    # The test process keeps the Hub offline, which InferenceClient applies to every URL, even loopback.
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    client = InferenceClient(base_url=server.base_url, api_key="unused")
    for model in (CHAT_MODEL_ID, NEVER_EOS_MODEL_ID):  # a trained model and one that never stops on its own
        completion = client.chat_completion(
            model=model,
            messages=[{"role": "user", "content": "Tell me about Paris."}],
            response_format={"type": "json_object", "value": SCHEMA},
            max_tokens=200,
            extra_body=NO_THINKING,
        )
        assert completion.choices[0].finish_reason == "stop"
        jsonschema.validate(json.loads(completion.choices[0].message.content), SCHEMA)


def test_json_object_output(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model=CHAT_MODEL_ID,
        messages=[{"role": "user", "content": "Hello"}],
        response_format={"type": "json_object"},
        max_tokens=100,
        extra_body=NO_THINKING,
    )
    content = completion.choices[0].message.content
    assert content.startswith("{"), content  # unconstrained, this model answers in words
    if completion.choices[0].finish_reason == "stop":  # a weak model may write one string until the limit
        assert isinstance(json.loads(content), dict)


# -- responses ----------------------------------------------------------------------------------------


def test_responses_function_call_items(client: OpenAI) -> None:
    response = client.responses.create(
        model=CHAT_MODEL_ID, input=WEATHER["messages"][0]["content"], tools=[WEATHER_FUNCTION], temperature=0
    )
    [item] = response.output
    assert item.type == "function_call" and item.id.startswith("fc_") and item.call_id.startswith("call_")
    assert item.name == "get_weather" and json.loads(item.arguments) == {"location": "Paris"}
    assert response.status == "completed"
    follow = client.responses.create(
        model=CHAT_MODEL_ID,
        previous_response_id=response.id,
        input=[
            {
                "type": "function_call_output",
                "call_id": item.call_id,
                "output": '{"temperature": 18, "condition": "sunny"}',
            }
        ],
        tools=[WEATHER_FUNCTION],
        temperature=0,
    )
    assert follow.output_text == _canned("weather-tool-result")["content"]


def test_responses_stream_function_call_and_reasoning(client: OpenAI) -> None:
    with client.responses.stream(
        model=CHAT_MODEL_ID, input=WEATHER["messages"][0]["content"], tools=[WEATHER_FUNCTION], temperature=0
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert deltas == done.arguments == final.output[0].arguments
    canned = _canned("capital-thinking")
    with client.responses.stream(
        model=CHAT_MODEL_ID, input=canned["messages"][0]["content"], temperature=0, extra_body=THINKING
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].content[0].text == canned["reasoning"] and final.output_text == CAPITAL_ANSWER
    reasoning = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    assert reasoning == canned["reasoning"]
    assert final.usage.output_tokens_details.reasoning_tokens > 0


def test_responses_text_format_json_schema(client: OpenAI) -> None:
    response = client.responses.create(
        model=CHAT_MODEL_ID,
        input="Tell me about Paris.",
        text={"format": {"type": "json_schema", "name": "city", "schema": SCHEMA, "strict": True}},
        max_output_tokens=200,
        extra_body=NO_THINKING,
    )
    jsonschema.validate(json.loads(response.output_text), SCHEMA)
    assert response.text.format.type == "json_schema"


def test_plain_answers_are_unchanged_with_tools_offered(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model=CHAT_MODEL_ID,
        messages=[{"role": "user", "content": "Hello"}],
        tools=[WEATHER_TOOL],
        temperature=0,
        max_tokens=64,
        extra_body=NO_THINKING,
    )
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content  # text stays content


# -- server flags -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flagged(hf_home: Path, logs_dir: Path) -> Iterator[OpenAI]:
    """``--reasoning off`` and a tool-call parser that is not the model's own."""
    with run_server(hf_home, logs_dir, "--reasoning", "off", "--tool-call-parser", "llama3_json") as proc:
        yield OpenAI(base_url=proc.base_url, api_key="unused", max_retries=0)


def test_reasoning_flag_and_request_override(flagged: OpenAI) -> None:
    canned = _canned("capital-thinking")
    off = flagged.chat.completions.create(model=CHAT_MODEL_ID, messages=canned["messages"], temperature=0)
    assert off.choices[0].message.content == CAPITAL_ANSWER
    assert getattr(off.choices[0].message, "reasoning_content", None) is None
    on = flagged.chat.completions.create(
        model=CHAT_MODEL_ID, messages=canned["messages"], temperature=0, extra_body=THINKING
    )
    assert on.choices[0].message.reasoning_content == canned["reasoning"]


def test_tool_call_parser_flag_overrides_detection(flagged: OpenAI) -> None:
    completion = flagged.chat.completions.create(
        model=CHAT_MODEL_ID, messages=WEATHER["messages"], tools=[WEATHER_TOOL], temperature=0, extra_body=THINKING
    )  # thinking on, as the model was trained for this question
    message = completion.choices[0].message
    assert message.tool_calls is None  # the Llama 3 parser does not read this model's <tool_call> blocks
    assert "<tool_call>" in message.content and completion.choices[0].finish_reason == "stop"
