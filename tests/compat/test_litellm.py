"""litellm: ``litellm.completion`` with the ``openai/`` prefix and ``api_base``, as its docs show for
OpenAI-compatible servers; streaming, usage, reasoning and tool calls."""

from __future__ import annotations

import json
from typing import Any

import litellm
import pytest

from app.demo.canned_chats import CANNED_CHATS, CAPITAL_ANSWER
from tests.fixtures.tiny_models import CHAT_MODEL_ID
from tests.fixtures.tool_chats import FORECAST_ARGS, FORECAST_QUESTION, FORECAST_TOOL
from tests.fixtures.tool_models import QWEN3_CODER_MODEL_ID

CAPITAL = [{"role": "user", "content": "What is the capital of France?"}]
CAPITAL_REASONING = next(chat for chat in CANNED_CHATS if chat["name"] == "capital-thinking")["reasoning"]


@pytest.fixture(scope="module", autouse=True)
def offline() -> None:
    litellm.telemetry = False


def _kwargs(base_url: str, model: str, **extra: Any) -> dict[str, Any]:
    return {"model": f"openai/{model}", "api_base": base_url, "api_key": "unused", "temperature": 0, **extra}


def test_completion_and_its_stream_agree(base_url: str) -> None:
    kwargs = _kwargs(
        base_url, CHAT_MODEL_ID, messages=CAPITAL, extra_body={"chat_template_kwargs": {"enable_thinking": True}}
    )
    response = litellm.completion(**kwargs)
    message = response.choices[0].message
    assert (message.content, message.reasoning_content) == (CAPITAL_ANSWER, CAPITAL_REASONING)
    assert response.choices[0].finish_reason == "stop"
    chunks = list(litellm.completion(stream=True, stream_options={"include_usage": True}, **kwargs))
    content = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    reasoning = "".join(
        getattr(chunk.choices[0].delta, "reasoning_content", None) or "" for chunk in chunks if chunk.choices
    )
    assert (content, reasoning) == (CAPITAL_ANSWER, CAPITAL_REASONING)
    rebuilt = litellm.stream_chunk_builder(chunks, messages=CAPITAL)
    assert rebuilt.choices[0].message.content == CAPITAL_ANSWER
    usage = response.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    streamed = [chunk.usage for chunk in chunks if getattr(chunk, "usage", None)][-1]
    assert (streamed.prompt_tokens, streamed.completion_tokens) == (usage.prompt_tokens, usage.completion_tokens)


def test_a_tool_call_is_parsed_with_its_arguments(base_url: str) -> None:
    messages = [{"role": "user", "content": FORECAST_QUESTION}]
    response = litellm.completion(**_kwargs(base_url, QWEN3_CODER_MODEL_ID, messages=messages, tools=[FORECAST_TOOL]))
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.function.name == "get_forecast" and json.loads(call.function.arguments) == FORECAST_ARGS
    chunks = list(
        litellm.completion(
            stream=True, **_kwargs(base_url, QWEN3_CODER_MODEL_ID, messages=messages, tools=[FORECAST_TOOL])
        )
    )
    rebuilt = litellm.stream_chunk_builder(chunks, messages=messages)
    [streamed] = rebuilt.choices[0].message.tool_calls
    assert (streamed.function.name, json.loads(streamed.function.arguments)) == ("get_forecast", FORECAST_ARGS)


def test_a_server_error_keeps_its_status(base_url: str) -> None:
    with pytest.raises(litellm.NotFoundError):
        litellm.completion(**_kwargs(base_url, "no/such-model", messages=CAPITAL, num_retries=0))
