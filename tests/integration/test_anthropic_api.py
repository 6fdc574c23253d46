"""The Anthropic Messages API end to end with the official ``anthropic`` SDK against real servers: the
tiny chat model (Qwen3's ``<think>`` reasoning and Hermes tool calls), the tool-call models of the other
families, and the tiny LLaVA for images. Every server here requires an API key, sent as ``x-api-key``
(the SDK's ``api_key``) or as a bearer token (its ``auth_token``, what Claude Code's
``ANTHROPIC_AUTH_TOKEN`` sends)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from anthropic import Anthropic

from app.demo.canned_chats import CANNED_CHATS, CAPITAL_ANSWER, GREETING
from tests.fixtures.media_models import IMAGE_TOKENS_PER_IMAGE, VISION_MODEL_ID
from tests.fixtures.tiny_models import CHAT_MODEL_ID
from tests.fixtures.tool_chats import FORECAST_ANSWER, FORECAST_ARGS, FORECAST_QUESTION, FORECAST_RESULT, FORECAST_TOOL
from tests.fixtures.tool_models import TOOL_MODEL_IDS
from tests.support.media import MediaServer, b64, media_server, png
from tests.support.server import ServerProcess, run_server

KEY = "sk-local-test"
CAPITAL = next(chat for chat in CANNED_CHATS if chat["name"] == "capital-thinking")
WEATHER_RESULT = next(chat for chat in CANNED_CHATS if chat["name"] == "weather-tool-result")
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "City name"}},
        "required": ["location"],
    },
}
FORECAST = {
    "name": FORECAST_TOOL["function"]["name"],
    "description": FORECAST_TOOL["function"].get("description", ""),
    "input_schema": FORECAST_TOOL["function"]["parameters"],
}
NO_THINKING: dict[str, Any] = {"type": "disabled"}
THINKING: dict[str, Any] = {"type": "enabled", "budget_tokens": 1024}
GREEDY = {"temperature": 0}  # sent as extra_body: the installed SDK no longer types the sampling fields


def _client(server: ServerProcess, **auth: str) -> Anthropic:
    return Anthropic(base_url=server.url, max_retries=0, **(auth or {"api_key": KEY}))


@pytest.fixture(scope="module")
def server(hf_home: Path, logs_dir: Path) -> Iterator[ServerProcess]:
    with run_server(hf_home, logs_dir, "--model-timeout", "-1", "--api-key", KEY) as proc:
        yield proc


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Anthropic:
    return _client(server)


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def _streamed(client: Anthropic, **kwargs: Any) -> tuple[Any, list[Any]]:
    with client.messages.stream(**kwargs) as stream:
        events = list(stream)
        return stream.get_final_message(), events


def _same_message(streamed: Any, whole: Any) -> None:
    """Equal but for the ids, which are fresh per message and per tool call."""

    def without_ids(message: Any) -> dict[str, Any]:
        dumped = message.model_dump(exclude={"id"})
        for block in dumped["content"]:
            if block["type"] == "tool_use":
                assert block.pop("id").startswith("call_")
        return dumped

    assert without_ids(streamed) == without_ids(whole)


# -- text, streaming and thinking ---------------------------------------------------------------------


def test_plain_text(client: Anthropic) -> None:
    message = client.messages.create(
        model=CHAT_MODEL_ID, max_tokens=64, messages=_user("Hello"), thinking=NO_THINKING, extra_body=GREEDY
    )
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert [(block.type, block.text) for block in message.content] == [("text", GREETING)]
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert message._request_id  # the `request-id` header


def test_system_prompt_as_blocks_is_rendered_like_a_string(client: Anthropic) -> None:
    blocks = [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}]
    as_blocks = client.messages.count_tokens(model=CHAT_MODEL_ID, system=blocks, messages=_user("Hello"))
    as_string = client.messages.count_tokens(
        model=CHAT_MODEL_ID, system="Be brief.\n\nBe kind.", messages=_user("Hello")
    )
    plain = client.messages.count_tokens(model=CHAT_MODEL_ID, messages=_user("Hello"))
    assert as_blocks.input_tokens == as_string.input_tokens > plain.input_tokens


def test_thinking_blocks(client: Anthropic) -> None:
    kwargs = {"model": CHAT_MODEL_ID, "max_tokens": 96, "messages": CAPITAL["messages"], "extra_body": GREEDY}
    message = client.messages.create(thinking=THINKING, **kwargs)
    [thinking, text] = message.content
    assert (thinking.type, thinking.thinking, text.type, text.text) == (
        "thinking",
        CAPITAL["reasoning"],
        "text",
        CAPITAL_ANSWER,
    )
    assert thinking.signature
    plain = client.messages.create(thinking=NO_THINKING, **kwargs)
    assert [block.type for block in plain.content] == ["text"] and plain.content[0].text == CAPITAL_ANSWER
    budget = {"type": "enabled", "budget_tokens": 6}  # spent before the reasoning ends: its end is forced
    [cut, answer] = client.messages.create(thinking=budget, **kwargs).content
    assert cut.type == "thinking" and cut.thinking and cut.signature
    assert CAPITAL["reasoning"].startswith(cut.thinking) and len(cut.thinking) < len(CAPITAL["reasoning"])
    assert answer.type == "text" and answer.text  # the model answers after the forced end (what it says is its own)


def test_stream_adds_up_to_the_non_streaming_message(client: Anthropic) -> None:
    kwargs = {"model": CHAT_MODEL_ID, "max_tokens": 96, "messages": CAPITAL["messages"], "extra_body": GREEDY}
    whole = client.messages.create(thinking=THINKING, **kwargs)
    streamed, events = _streamed(client, thinking=THINKING, **kwargs)
    _same_message(streamed, whole)
    kinds = [event.type for event in events]  # the SDK's own events (text, thinking, ...) among them; no ping
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-2:] == ["message_delta", "message_stop"]
    deltas = {event.delta.type for event in events if event.type == "content_block_delta"}
    assert deltas == {"thinking_delta", "signature_delta", "text_delta"}
    assert sum(event.type == "content_block_delta" and event.delta.type == "text_delta" for event in events) >= 2


def test_sse_frames_carry_event_lines(server: ServerProcess) -> None:
    body = {"model": CHAT_MODEL_ID, "max_tokens": 8, "messages": _user("Hello"), "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/messages", json=body, headers={"x-api-key": KEY}, timeout=60) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream") and reply.headers["request-id"]
        frames = "".join(reply.iter_text()).strip().split("\n\n")
    for frame in frames:
        event, data = frame.split("\n")
        assert event.removeprefix("event: ") == json.loads(data.removeprefix("data: "))["type"]
    assert frames[0].startswith("event: message_start") and frames[1] == 'event: ping\ndata: {"type":"ping"}'
    assert frames[-1].startswith("event: message_stop")


def test_stop_sequences_and_max_tokens(client: Anthropic) -> None:
    kwargs = {"model": CHAT_MODEL_ID, "messages": CAPITAL["messages"], "thinking": NO_THINKING, "extra_body": GREEDY}
    stopped = client.messages.create(max_tokens=64, stop_sequences=["Paris", "never"], **kwargs)
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "Paris")
    assert stopped.content[0].text == "The capital of France is "
    streamed, _ = _streamed(client, max_tokens=64, stop_sequences=["Paris", "never"], **kwargs)
    _same_message(streamed, stopped)
    cut = client.messages.create(max_tokens=3, **kwargs)
    assert (cut.stop_reason, cut.usage.output_tokens) == ("max_tokens", 3)


def test_sampling_fields_and_metadata_are_accepted(client: Anthropic) -> None:
    message = client.messages.create(
        model=CHAT_MODEL_ID,
        max_tokens=4,
        messages=_user("Hello"),
        extra_body={"temperature": 0.7, "top_p": 0.9, "top_k": 20},  # this SDK version types none of them
        metadata={"user_id": "user-1"},
    )
    assert message.usage.output_tokens <= 4


# -- tools --------------------------------------------------------------------------------------------


def test_tool_use_then_tool_result(client: Anthropic) -> None:
    kwargs = {"model": CHAT_MODEL_ID, "max_tokens": 96, "tools": [WEATHER_TOOL], "extra_body": GREEDY}
    question = _user("What is the weather in Paris?")
    message = client.messages.create(messages=question, **kwargs)
    assert message.stop_reason == "tool_use"
    [call] = [block for block in message.content if block.type == "tool_use"]
    assert (call.name, call.input) == ("get_weather", {"location": "Paris"})
    streamed, events = _streamed(client, messages=question, **kwargs)
    _same_message(streamed, message)
    assert [e.delta.type for e in events if e.type == "content_block_delta"].count("input_json_delta") >= 2
    follow = [
        *question,
        {"role": "assistant", "content": [block.model_dump() for block in message.content]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": call.id, "content": WEATHER_RESULT["messages"][-1]["content"]}
            ],
        },
    ]
    answer = client.messages.create(messages=follow, **kwargs)
    assert ([block.text for block in answer.content], answer.stop_reason) == ([WEATHER_RESULT["content"]], "end_turn")


def test_tool_choice_none_keeps_tools_out_of_the_prompt(client: Anthropic) -> None:
    kwargs = {"model": CHAT_MODEL_ID, "messages": _user("Hello"), "tools": [WEATHER_TOOL]}
    with_tools = client.messages.count_tokens(**kwargs).input_tokens
    without = client.messages.count_tokens(tool_choice={"type": "none"}, **kwargs).input_tokens
    assert without == client.messages.count_tokens(model=CHAT_MODEL_ID, messages=_user("Hello")).input_tokens
    assert with_tools > without


TIME_TOOL = {
    "name": "get_time",
    "input_schema": {
        "type": "object",
        "properties": {"zone": {"enum": ["UTC", "CET"]}},
        "required": ["zone"],
        "additionalProperties": False,
    },
}


def test_a_named_tool_is_forced(client: Anthropic) -> None:
    message = client.messages.create(
        model=CHAT_MODEL_ID,
        max_tokens=200,
        messages=_user("What is the weather in Paris?"),
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "tool", "name": "get_time", "disable_parallel_tool_use": True},
        extra_body=GREEDY,
    )
    [call] = message.content
    assert call.name == "get_time" and call.input["zone"] in ("UTC", "CET")  # the model itself calls get_weather
    assert message.stop_reason == "tool_use"


# -- count_tokens ---------------------------------------------------------------------------------------


def test_count_tokens_is_the_prompt_a_request_renders(client: Anthropic) -> None:
    kwargs = {"model": CHAT_MODEL_ID, "messages": _user("What is the weather in Paris?"), "tools": [WEATHER_TOOL]}
    counted = client.messages.count_tokens(**kwargs).input_tokens
    assert counted == client.messages.create(max_tokens=1, **kwargs).usage.input_tokens
    thinking = client.messages.count_tokens(model=CHAT_MODEL_ID, messages=_user("Hi"), thinking=THINKING).input_tokens
    off = client.messages.count_tokens(model=CHAT_MODEL_ID, messages=_user("Hi"), thinking=NO_THINKING).input_tokens
    assert thinking != off  # the template renders the switch


# -- errors and authentication ----------------------------------------------------------------------------


def _error_body(server: ServerProcess, body: dict[str, Any], status: int, path: str = "/v1/messages") -> dict[str, Any]:
    reply = httpx.post(f"{server.url}{path}", json=body, headers={"x-api-key": KEY}, timeout=60)
    assert reply.status_code == status, reply.text
    assert reply.headers["request-id"]
    payload = reply.json()
    assert payload["type"] == "error" and set(payload["error"]) == {"type", "message"}
    return payload["error"]


def test_errors_raise_the_sdks_exception_classes(client: Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="nobody/nothing", max_tokens=4, messages=_user("Hi"))
    assert missing.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model=CHAT_MODEL_ID, max_tokens=4, messages=_user("Hi"), extra_body={"temperature": 1.5})
    assert bad.value.body["error"]["type"] == "invalid_request_error" and "temperature" in bad.value.message
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(
            model=CHAT_MODEL_ID, max_tokens=4, messages=_user("Hi"), tools=[{"type": "bash_20250124", "name": "bash"}]
        )
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="nobody/nothing", messages=_user("Hi"))


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"model": CHAT_MODEL_ID, "messages": _user("Hi")}, "max_tokens"),
        ({"model": CHAT_MODEL_ID, "max_tokens": 0, "messages": _user("Hi")}, "max_tokens"),
        ({"model": CHAT_MODEL_ID, "max_tokens": 4, "messages": []}, "messages"),
        ({"model": CHAT_MODEL_ID, "max_tokens": 4, "messages": [{"role": "system", "content": "x"}]}, "role"),
        (
            {
                "model": CHAT_MODEL_ID,
                "max_tokens": 4,
                "messages": [{"role": "user", "content": [{"type": "document"}]}],
            },
            "messages[0].content[0]",
        ),
    ],
)
def test_bad_input_is_an_invalid_request_error(server: ServerProcess, body: dict[str, Any], fragment: str) -> None:
    error = _error_body(server, body, 400)
    assert error["type"] == "invalid_request_error" and fragment in error["message"]


def test_the_rest_of_the_api_keeps_openais_shape(server: ServerProcess) -> None:
    reply = httpx.post(f"{server.url}/v1/chat/completions", json={}, headers={"x-api-key": KEY}, timeout=60)
    assert reply.status_code == 400 and set(reply.json()) == {"error"}


def test_x_api_key_and_bearer_both_authenticate(server: ServerProcess) -> None:
    for client in (_client(server, api_key=KEY), _client(server, auth_token=KEY)):
        assert client.messages.count_tokens(model=CHAT_MODEL_ID, messages=_user("Hi")).input_tokens > 0
    with pytest.raises(anthropic.AuthenticationError) as denied:
        _client(server, api_key="wrong").messages.create(model=CHAT_MODEL_ID, max_tokens=4, messages=_user("Hi"))
    assert denied.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": denied.value.body["error"]["message"]},
    }
    reply = httpx.post(f"{server.url}/v1/messages", json={}, headers={"anthropic-version": "2023-06-01"}, timeout=60)
    assert reply.status_code == 401 and reply.json()["error"]["type"] == "authentication_error"


# -- the other tool-call families -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tool_client(tool_hf_home: Path, logs_dir: Path) -> Iterator[Anthropic]:
    with run_server(tool_hf_home, logs_dir, "--model-timeout", "-1", "--api-key", KEY) as proc:
        yield _client(proc)


@pytest.mark.parametrize("model", TOOL_MODEL_IDS)
def test_tool_use_in_each_family(tool_client: Anthropic, model: str) -> None:
    kwargs = {"model": model, "max_tokens": 96, "tools": [FORECAST], "extra_body": GREEDY}
    question = _user(FORECAST_QUESTION)
    message = tool_client.messages.create(messages=question, **kwargs)
    assert message.stop_reason == "tool_use"
    [call] = message.content
    assert (call.type, call.name, call.input) == ("tool_use", FORECAST["name"], FORECAST_ARGS)
    streamed, _ = _streamed(tool_client, messages=question, **kwargs)
    _same_message(streamed, message)
    result = {"type": "tool_result", "tool_use_id": call.id, "content": [{"type": "text", "text": FORECAST_RESULT}]}
    follow = [*question, {"role": "assistant", "content": [call.model_dump()]}, {"role": "user", "content": [result]}]
    answer = tool_client.messages.create(messages=follow, **kwargs)
    assert ([block.text for block in answer.content], answer.stop_reason) == ([FORECAST_ANSWER], "end_turn")


# -- images -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files() -> Iterator[MediaServer]:
    with media_server() as running:
        yield running


@pytest.fixture(scope="module")
def vision_client(media_hf_home: Path, logs_dir: Path, files: MediaServer) -> Iterator[Anthropic]:
    args = ("--model-timeout", "-1", "--api-key", KEY, "--allowed-media-hosts", "127.0.0.1")
    with run_server(media_hf_home, logs_dir, *args) as proc:
        yield _client(proc)


def _image_question(source: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [{"type": "text", "text": "What is in this picture?"}, {"type": "image", "source": source}],
        }
    ]


def test_images_by_base64_and_url(vision_client: Anthropic, files: MediaServer) -> None:
    base64_source = {"type": "base64", "media_type": "image/png", "data": b64(png())}
    text_only = vision_client.messages.count_tokens(model=VISION_MODEL_ID, messages=_user("What is in this picture?"))
    counted = vision_client.messages.count_tokens(model=VISION_MODEL_ID, messages=_image_question(base64_source))
    assert counted.input_tokens >= text_only.input_tokens + IMAGE_TOKENS_PER_IMAGE - 1
    message = vision_client.messages.create(
        model=VISION_MODEL_ID, max_tokens=3, messages=_image_question(base64_source)
    )
    assert message.usage.input_tokens == counted.input_tokens and message.usage.output_tokens > 0
    url = files.file("/red.png", png(), "image/png")
    by_url = vision_client.messages.create(
        model=VISION_MODEL_ID, max_tokens=3, messages=_image_question({"type": "url", "url": url})
    )
    assert by_url.usage.input_tokens == counted.input_tokens


def test_image_urls_pass_the_media_paths_checks(vision_client: Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as private:
        vision_client.messages.create(
            model=VISION_MODEL_ID,
            max_tokens=3,
            messages=_image_question({"type": "url", "url": "http://10.0.0.1/a.png"}),
        )
    assert private.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError):  # a text-only model refuses the image part by name
        vision_client.messages.create(
            model=CHAT_MODEL_ID,
            max_tokens=3,
            messages=_image_question({"type": "base64", "media_type": "image/png", "data": b64(png())}),
        )
