"""The official ``openai`` SDK: chat and responses, streaming, and its structured-output helpers
(``chat.completions.parse`` and ``beta.chat.completions.parse`` with a pydantic model, ``responses.parse``,
the ``chat.completions.stream`` helper, ``pydantic_function_tool``)."""

from __future__ import annotations

from typing import Any, Literal

import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel, Field

from app.demo.canned_chats import CANNED_CHATS, CAPITAL_ANSWER
from tests.fixtures.tiny_models import CHAT_MODEL_ID, NEVER_EOS_MODEL_ID
from tests.fixtures.tool_chats import FORECAST_QUESTION
from tests.fixtures.tool_models import LLAMA3_MODEL_ID

NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}
THINKING = {"chat_template_kwargs": {"enable_thinking": True}}
CAPITAL = [{"role": "user", "content": "What is the capital of France?"}]
CAPITAL_REASONING = next(chat for chat in CANNED_CHATS if chat["name"] == "capital-thinking")["reasoning"]


class City(BaseModel):
    """Bounded, so that even a model that never stops on its own completes it."""

    name: str = Field(max_length=16)
    country: Literal["France", "Germany", "Spain"]
    population_millions: int = Field(ge=0, le=40)


class GetForecast(BaseModel):
    city: Literal["Paris", "Berlin"]
    days: int = Field(ge=1, le=7)


@pytest.fixture(scope="module")
def client(base_url: str) -> OpenAI:
    return OpenAI(base_url=base_url, api_key="unused", max_retries=0)


def test_chat_stream_assembles_to_the_non_stream_answer(client: OpenAI) -> None:
    kwargs: dict[str, Any] = {"model": CHAT_MODEL_ID, "messages": CAPITAL, "temperature": 0, "extra_body": THINKING}
    completion = client.chat.completions.create(**kwargs)
    message = completion.choices[0].message
    assert (message.content, message.reasoning_content) == (CAPITAL_ANSWER, CAPITAL_REASONING)  # type: ignore[attr-defined]
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs))
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    assert (content, reasoning) == (CAPITAL_ANSWER, CAPITAL_REASONING)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage, streamed = completion.usage, chunks[-1].usage
    assert usage is not None and streamed is not None
    assert (streamed.prompt_tokens, streamed.completion_tokens) == (usage.prompt_tokens, usage.completion_tokens)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > usage.prompt_tokens


@pytest.mark.parametrize("model", [CHAT_MODEL_ID, NEVER_EOS_MODEL_ID])
def test_chat_completions_parse_returns_the_pydantic_model(client: OpenAI, model: str) -> None:
    for parse in (client.chat.completions.parse, client.beta.chat.completions.parse):
        completion = parse(
            model=model, messages=CAPITAL, response_format=City, temperature=0, max_tokens=80, extra_body=NO_THINKING
        )
        choice = completion.choices[0]
        assert choice.finish_reason == "stop"
        assert isinstance(choice.message.parsed, City)
        assert City.model_validate_json(choice.message.content or "") == choice.message.parsed
        assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_chat_stream_helper_parses_the_final_message(client: OpenAI) -> None:
    kwargs: dict[str, Any] = {"model": CHAT_MODEL_ID, "messages": CAPITAL, "temperature": 0, "max_tokens": 80}
    with client.chat.completions.stream(response_format=City, extra_body=NO_THINKING, **kwargs) as stream:
        final = stream.get_final_completion()
    parsed = client.chat.completions.parse(response_format=City, extra_body=NO_THINKING, **kwargs)
    assert isinstance(final.choices[0].message.parsed, City)
    assert final.choices[0].message.parsed == parsed.choices[0].message.parsed


@pytest.mark.parametrize("model", [CHAT_MODEL_ID, NEVER_EOS_MODEL_ID])
def test_responses_parse_returns_the_pydantic_model(client: OpenAI, model: str) -> None:
    response = client.responses.parse(
        model=model, input=CAPITAL, text_format=City, temperature=0, max_output_tokens=80, extra_body=NO_THINKING
    )
    assert response.status == "completed"
    assert isinstance(response.output_parsed, City)
    assert City.model_validate_json(response.output_text) == response.output_parsed
    assert response.usage is not None and response.usage.output_tokens > 0


def test_a_pydantic_function_tool_is_called_with_parsed_arguments(client: OpenAI) -> None:
    """The SDK's strict tool schema differs from what the model was trained on; a named tool_choice makes
    the server's grammar guarantee the call, and the SDK parses its arguments into the model."""
    completion = client.chat.completions.parse(
        model=LLAMA3_MODEL_ID,
        messages=[{"role": "user", "content": FORECAST_QUESTION}],
        tools=[openai.pydantic_function_tool(GetForecast, name="get_forecast")],
        tool_choice={"type": "function", "function": {"name": "get_forecast"}},
        temperature=0,
        max_tokens=80,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_forecast"
    assert isinstance(call.function.parsed_arguments, GetForecast)


def test_unknown_model_is_a_not_found_error(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no/such-model", messages=CAPITAL)
