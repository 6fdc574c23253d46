"""langchain-openai's ``ChatOpenAI`` pointed at the server: invoke, stream, ``bind_tools`` and
``with_structured_output`` (JSON schema and function calling)."""

from __future__ import annotations

from typing import Literal

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from app.demo.canned_chats import CAPITAL_ANSWER
from tests.fixtures.tiny_models import CHAT_MODEL_ID
from tests.fixtures.tool_chats import FORECAST_ANSWER, FORECAST_ARGS, FORECAST_QUESTION, FORECAST_RESULT, FORECAST_TOOL
from tests.fixtures.tool_models import LLAMA3_MODEL_ID

CAPITAL_QUESTION = "What is the capital of France?"
NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}


class City(BaseModel):
    name: str = Field(max_length=16)
    country: Literal["France", "Germany", "Spain"]


def chat(base_url: str, model: str = CHAT_MODEL_ID, **kwargs: object) -> ChatOpenAI:
    return ChatOpenAI(model=model, base_url=base_url, api_key="unused", temperature=0, max_retries=0, **kwargs)  # type: ignore[arg-type]


def test_invoke_and_stream_give_the_same_answer_with_usage(base_url: str) -> None:
    llm = chat(base_url, extra_body=NO_THINKING, stream_usage=True)
    message = llm.invoke(CAPITAL_QUESTION)
    assert message.content == CAPITAL_ANSWER
    assert message.response_metadata["finish_reason"] == "stop"
    usage = message.usage_metadata
    assert usage is not None and usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    chunks = list(llm.stream(CAPITAL_QUESTION))
    assert len(chunks) > 2  # streamed token by token, not one block
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert merged.content == CAPITAL_ANSWER
    assert merged.usage_metadata is not None
    assert merged.usage_metadata["output_tokens"] == usage["output_tokens"]


def test_bind_tools_gives_a_parsed_tool_call_and_answers_from_its_result(base_url: str) -> None:
    llm = chat(base_url, LLAMA3_MODEL_ID).bind_tools([FORECAST_TOOL])
    question = HumanMessage(FORECAST_QUESTION)
    reply = llm.invoke([question])
    assert isinstance(reply, AIMessage)
    [call] = reply.tool_calls
    assert (call["name"], call["args"]) == ("get_forecast", FORECAST_ARGS)
    streamed = None
    for chunk in llm.stream([question]):
        streamed = chunk if streamed is None else streamed + chunk
    assert streamed is not None
    assert [(c["name"], c["args"]) for c in streamed.tool_calls] == [("get_forecast", FORECAST_ARGS)]
    answer = llm.invoke([question, reply, ToolMessage(FORECAST_RESULT, tool_call_id=call["id"])])
    assert answer.content == FORECAST_ANSWER


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_with_structured_output_returns_the_pydantic_model(base_url: str, method: str) -> None:
    llm = chat(base_url, extra_body=NO_THINKING, max_completion_tokens=80)
    result = llm.with_structured_output(City, method=method, include_raw=True).invoke(CAPITAL_QUESTION)
    assert result["parsing_error"] is None
    assert isinstance(result["parsed"], City)
