"""Tool calls end to end in the Qwen3-Coder, Llama 3, Mistral and Gemma 4 formats: one real server
(no ``--tool-call-parser``, so each model's parser is the detected one) serving a tiny model trained
to write each format, and the official ``openai`` client (chat, chat streams, responses, round trips).
Hermes is covered with tiny-chat in ``test_tools_reasoning_api.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from app.demo.canned_chats import CAPITAL_ANSWER, GREETING
from app.parsers.registry import select_reasoning_parser, select_tool_parser
from app.parsers.traits import ModelTraits
from tests.fixtures.tool_chats import (
    CAPITAL_QUESTION,
    CAPITAL_REASONING,
    FORECAST_ANSWER,
    FORECAST_ARGS,
    FORECAST_QUESTION,
    FORECAST_RESULT,
    FORECAST_TOOL,
)
from tests.fixtures.tool_models import (
    GEMMA4_MODEL_ID,
    LLAMA3_MODEL_ID,
    MISTRAL_MODEL_ID,
    QWEN3_CODER_MODEL_ID,
    TOOL_MODEL_IDS,
    canned_chats,
)
from tests.support.chat_stream import stream_chat
from tests.support.models import load_tokenizer, snapshot_path
from tests.support.server import ServerProcess, run_server

PARSERS = {
    QWEN3_CODER_MODEL_ID: "qwen3_coder",
    LLAMA3_MODEL_ID: "llama3_json",
    MISTRAL_MODEL_ID: "mistral",
    GEMMA4_MODEL_ID: "gemma4",
}
# Markers (and end-of-turn tokens) of every format: none may reach content.
MARKERS = (
    "<tool_call>",
    "</tool_call>",
    "<function=",
    "<parameter=",
    "<|python_tag|>",
    "<|eot_id|>",
    "[TOOL_CALLS]",
    "</s>",
    "<|tool_call>",
    "<tool_call|>",
    '<|"|>',
    "<|tool_response>",
    "<turn|>",
    "<|channel>",
    "<channel|>",
    "<|im_end|>",
)
FORECAST_FUNCTION = {"type": "function", **FORECAST_TOOL["function"]}  # the Responses API's flat tool form
CALL_KWARGS: dict[str, Any] = {
    "messages": [{"role": "user", "content": FORECAST_QUESTION}],
    "tools": [FORECAST_TOOL],
    "temperature": 0,
    "max_tokens": 96,
}

per_model = pytest.mark.parametrize("model", TOOL_MODEL_IDS)


@pytest.fixture(scope="module")
def server(tool_hf_home: Path, logs_dir: Path) -> Iterator[ServerProcess]:
    with run_server(tool_hf_home, logs_dir, "--model-timeout", "-1") as proc:
        yield proc


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def _no_markers(text: str | None) -> bool:
    return not any(marker in (text or "") for marker in MARKERS)


@per_model
def test_the_format_is_detected_from_the_model(tool_hf_home: Path, model: str) -> None:
    """What the server's loader reads (config model_type, added tokens, template) selects the parser."""
    tok = load_tokenizer(tool_hf_home, model)
    config = json.loads((snapshot_path(tool_hf_home, model) / "config.json").read_text())
    traits = ModelTraits(config["model_type"], frozenset(tok.get_added_vocab()), tok.chat_template)
    parser = select_tool_parser(traits)
    assert parser is not None and parser.name == PARSERS[model]
    reasoning = select_reasoning_parser(traits)
    assert (reasoning.name if reasoning else None) == ("gemma4" if model == GEMMA4_MODEL_ID else None)
    # The premise of keeping special tokens in decoding: some of the format's markers are special tokens.
    special = set(tok.all_special_tokens)
    assert bool(special & set(parser.markers)) == (model != QWEN3_CODER_MODEL_ID)


@per_model
def test_chat_tool_call(client: OpenAI, model: str) -> None:
    choice = client.chat.completions.create(model=model, **CALL_KWARGS).choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.id.startswith("call_") and len(call.id) > len("call_") and call.type == "function"
    assert call.function.name == "get_forecast"
    arguments = json.loads(call.function.arguments)
    assert arguments == FORECAST_ARGS
    assert type(arguments["days"]) is int  # typed by the schema where the format writes bare text


@per_model
def test_chat_tool_call_stream(client: OpenAI, model: str) -> None:
    whole = client.chat.completions.create(model=model, **CALL_KWARGS).choices[0].message.tool_calls[0]
    message, chunks = stream_chat(client, model=model, **CALL_KWARGS)
    assert message["finish_reason"] == "tool_calls" and message["content"] == ""
    [call] = message["tool_calls"].values()
    assert call["id"].startswith("call_") and call["name"] == "get_forecast"
    assert call["arguments"] == whole.function.arguments
    fragments = [c for chunk in chunks for ch in chunk.choices for c in ch.delta.tool_calls or [] if not c.id]
    assert len(fragments) >= 2, "arguments arrive as incremental deltas after the id and name"
    assert all(_no_markers(ch.delta.content) for chunk in chunks for ch in chunk.choices)


@per_model
def test_responses_function_call(client: OpenAI, model: str) -> None:
    response = client.responses.create(
        model=model, input=FORECAST_QUESTION, tools=[FORECAST_FUNCTION], temperature=0, max_output_tokens=96
    )
    assert response.status == "completed"
    [item] = response.output
    assert item.type == "function_call" and item.call_id.startswith("call_")
    assert item.name == "get_forecast" and json.loads(item.arguments) == FORECAST_ARGS
    follow = client.responses.create(
        model=model,
        previous_response_id=response.id,
        input=[{"type": "function_call_output", "call_id": item.call_id, "output": FORECAST_RESULT}],
        tools=[FORECAST_FUNCTION],
        temperature=0,
        max_output_tokens=96,
    )
    assert follow.output_text == FORECAST_ANSWER


@per_model
def test_tool_round_trip(client: OpenAI, model: str) -> None:
    first = client.chat.completions.create(model=model, **CALL_KWARGS).choices[0].message
    messages = [
        *CALL_KWARGS["messages"],
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump() for call in first.tool_calls]},
        {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": FORECAST_RESULT},
    ]
    kwargs = {**CALL_KWARGS, "messages": messages}
    answer = client.chat.completions.create(model=model, **kwargs).choices[0]
    assert (answer.message.content, answer.finish_reason) == (FORECAST_ANSWER, "stop")
    assert answer.message.tool_calls is None
    streamed, _ = stream_chat(client, model=model, **kwargs)
    assert (streamed["content"], streamed["finish_reason"], streamed["tool_calls"]) == (FORECAST_ANSWER, "stop", {})


@per_model
def test_plain_answers_end_at_the_end_of_turn(client: OpenAI, model: str) -> None:
    """Content stays content (no markers, no calls) with tools offered and without, and generation
    stops at the family's end-of-turn token (``finish_reason`` ``stop``, not ``length``)."""
    greeting = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Hello"}],
        tools=[FORECAST_TOOL],
        temperature=0,
        max_tokens=64,
    ).choices[0]
    assert (greeting.message.content, greeting.message.tool_calls, greeting.finish_reason) == (GREETING, None, "stop")
    capital = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": CAPITAL_QUESTION}], temperature=0, max_tokens=64
    ).choices[0]
    assert (capital.message.content, capital.finish_reason) == (CAPITAL_ANSWER, "stop")
    assert getattr(capital.message, "reasoning_content", None) is None


def test_gemma4_thought_channel_is_reasoning(client: OpenAI) -> None:
    """Gemma 4's channel markers are special tokens; the reasoning split needs them kept in decoding
    even when no tools are offered."""
    canned = next(chat for chat in canned_chats(GEMMA4_MODEL_ID) if chat["name"] == "capital-thinking")
    kwargs: dict[str, Any] = {
        "model": GEMMA4_MODEL_ID,
        "messages": canned["messages"],
        "temperature": 0,
        "max_tokens": 64,
        "extra_body": {"chat_template_kwargs": {"enable_thinking": True}},
    }
    message = client.chat.completions.create(**kwargs).choices[0].message
    assert (message.reasoning_content, message.content) == (CAPITAL_REASONING, CAPITAL_ANSWER)
    streamed, chunks = stream_chat(client, **kwargs)
    assert (streamed["reasoning_content"], streamed["content"]) == (CAPITAL_REASONING, CAPITAL_ANSWER)
    for chunk in chunks:
        for choice in chunk.choices:
            assert _no_markers(choice.delta.content) and _no_markers(getattr(choice.delta, "reasoning_content", ""))


@pytest.mark.parametrize("model", [LLAMA3_MODEL_ID, MISTRAL_MODEL_ID])
def test_forced_call_in_the_models_own_syntax(client: OpenAI, model: str) -> None:
    """``tool_choice: required`` constrains decoding to the family's call syntax (Mistral's by the
    ``[TOOL_CALLS]`` token's id), even where the model would just greet."""
    choice = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Hello"}],
        tools=[FORECAST_TOOL],
        tool_choice="required",
        parallel_tool_calls=False,
        temperature=0,
        max_tokens=96,
    ).choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.function.name == "get_forecast"
    assert set(json.loads(call.function.arguments)) == {"city", "days"}


@pytest.mark.parametrize("model", [QWEN3_CODER_MODEL_ID, GEMMA4_MODEL_ID])
def test_forced_call_is_refused_where_no_grammar_exists(client: OpenAI, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=model, tool_choice="required", **CALL_KWARGS)
    assert caught.value.body["param"] == "tool_choice"
