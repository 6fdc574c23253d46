"""openai-agents: an agent that calls a tool and answers from its result, on both of the SDK's model
kinds (``OpenAIChatCompletionsModel`` over chat completions, ``OpenAIResponsesModel`` over responses),
with the tiny tool-calling models, which emit real tool calls in their own formats."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agents import (
    Agent,
    FunctionTool,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    set_tracing_disabled,
)
from agents.items import ToolCallItem, ToolCallOutputItem
from openai import AsyncOpenAI

from tests.fixtures.tool_chats import FORECAST_ANSWER, FORECAST_ARGS, FORECAST_QUESTION, FORECAST_RESULT, FORECAST_TOOL
from tests.fixtures.tool_models import LLAMA3_MODEL_ID, MISTRAL_MODEL_ID, QWEN3_CODER_MODEL_ID

MODEL_KINDS = [OpenAIChatCompletionsModel, OpenAIResponsesModel]


@pytest.fixture(scope="module", autouse=True)
def no_tracing() -> None:
    set_tracing_disabled(True)  # the traces would go to OpenAI's servers


def forecast_tool(calls: list[dict[str, Any]]) -> FunctionTool:
    """The tool the tiny models were trained with, its schema as given (not strict-rewritten)."""
    function = FORECAST_TOOL["function"]

    async def invoke(_: Any, arguments: str) -> str:
        calls.append(json.loads(arguments))
        return FORECAST_RESULT

    return FunctionTool(
        name=function["name"],
        description=function["description"],
        params_json_schema=function["parameters"],
        on_invoke_tool=invoke,
        strict_json_schema=False,
    )


@pytest.mark.parametrize("model_kind", MODEL_KINDS, ids=lambda kind: kind.__name__)
@pytest.mark.parametrize("model", [QWEN3_CODER_MODEL_ID, LLAMA3_MODEL_ID, MISTRAL_MODEL_ID])
async def test_an_agent_calls_the_tool_and_answers_from_its_result(base_url: str, model: str, model_kind: Any) -> None:
    client = AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0)
    calls: list[dict[str, Any]] = []
    agent = Agent(
        name="forecaster",
        model=model_kind(model=model, openai_client=client),
        tools=[forecast_tool(calls)],
        model_settings=ModelSettings(temperature=0),
    )
    result = await Runner.run(agent, FORECAST_QUESTION, max_turns=3)
    assert calls == [FORECAST_ARGS]
    [call] = [item for item in result.new_items if isinstance(item, ToolCallItem)]
    [output] = [item for item in result.new_items if isinstance(item, ToolCallOutputItem)]
    assert output.output == FORECAST_RESULT
    assert json.loads(call.raw_item.arguments) == FORECAST_ARGS  # type: ignore[union-attr]
    assert result.final_output == FORECAST_ANSWER
    usage = result.context_wrapper.usage
    assert usage.requests == 2 and usage.input_tokens > 0 and usage.output_tokens > 0
    await client.close()


@pytest.mark.parametrize("model_kind", MODEL_KINDS, ids=lambda kind: kind.__name__)
async def test_a_streamed_agent_run_gives_the_same_answer(base_url: str, model_kind: Any) -> None:
    client = AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0)
    calls: list[dict[str, Any]] = []
    agent = Agent(
        name="forecaster",
        model=model_kind(model=QWEN3_CODER_MODEL_ID, openai_client=client),
        tools=[forecast_tool(calls)],
        model_settings=ModelSettings(temperature=0),
    )
    run = Runner.run_streamed(agent, FORECAST_QUESTION, max_turns=3)
    deltas = [
        event.data.delta
        async for event in run.stream_events()
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"
    ]
    assert calls == [FORECAST_ARGS]
    assert run.final_output == FORECAST_ANSWER == "".join(deltas)
    await client.close()
