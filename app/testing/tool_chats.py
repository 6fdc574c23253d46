"""Canned conversations of the tiny tool-calling models: the same scenarios in each tool-call format.

Every family learns a forecast tool call (a string and an integer argument), the answer after the
tool result comes back, a greeting while tools are offered and a plain answer without tools; Gemma 4
also learns an answer with reasoning in its thought channel. Chats have the keys described in
:mod:`app.testing.canned_chats`; each family's ``render_*`` writes a parsed answer as that family's
raw output. Replayed calls in ``messages`` are in the form the server hands templates (arguments as
an object, see ``app.serving.chat``).
"""

from __future__ import annotations

import json
from typing import Any

from app.testing.canned_chats import CAPITAL_ANSWER, GREETING, Render, canned_chat, user

FORECAST_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_forecast",
        "description": "Weather forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "days": {"type": "integer", "description": "Number of days"},
            },
            "required": ["city", "days"],
        },
    },
}
FORECAST_QUESTION = "What is the weather in Paris for the next 3 days?"
FORECAST_ARGS: dict[str, Any] = {"city": "Paris", "days": 3}
FORECAST_RESULT = '{"forecast": "sunny", "high": 21}'
FORECAST_ANSWER = "It will be sunny in Paris for 3 days, up to 21 degrees."
CAPITAL_QUESTION = "What is the capital of France?"
CAPITAL_REASONING = "The user asks for the capital of France. It is Paris."

GEMMA_QUOTE = '<|"|>'
TOOL_CALL_ID = "call_0123456789abcdef01234567"

Calls = list[dict[str, Any]] | None  # parsed calls: ``{"name": str, "arguments": dict}``


# -- raw output per format ------------------------------------------------------------------------


def render_qwen3_coder(content: str, reasoning: str | None = None, tool_calls: Calls = None) -> str:
    """Qwen3-Coder XML: ``<tool_call>\\n<function=NAME>\\n<parameter=P>\\nVALUE\\n</parameter>\\n…``."""
    text = content
    for i, call in enumerate(tool_calls or []):
        if i or content:
            text += "\n"
        params = "".join(f"<parameter={k}>\n{_xml_value(v)}\n</parameter>\n" for k, v in call["arguments"].items())
        text += f"<tool_call>\n<function={call['name']}>\n{params}</function>\n</tool_call>"
    return text


def _xml_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def render_llama3(content: str, reasoning: str | None = None, tool_calls: Calls = None) -> str:
    """Llama 3.1 JSON calls, ``;``-separated: ``{"name": …, "parameters": …}``."""
    calls = [{"name": c["name"], "parameters": c["arguments"]} for c in tool_calls or []]
    return content + "; ".join(json.dumps(call, ensure_ascii=False) for call in calls)


def render_mistral(content: str, reasoning: str | None = None, tool_calls: Calls = None) -> str:
    """Mistral (before v11): ``[TOOL_CALLS]`` and a JSON array of ``{"name": …, "arguments": …}``."""
    if not tool_calls:
        return content
    calls = [{"name": c["name"], "arguments": c["arguments"]} for c in tool_calls]
    return content + "[TOOL_CALLS]" + json.dumps(calls, ensure_ascii=False)


def gemma_value(value: Any) -> str:
    """A value in Gemma 4's argument syntax (keys sorted, as its template writes them)."""
    if isinstance(value, str):
        return GEMMA_QUOTE + value + GEMMA_QUOTE
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{gemma_value(item)}" for key, item in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ",".join(gemma_value(item) for item in value) + "]"
    return json.dumps(value)


def render_gemma4(content: str, reasoning: str | None = None, tool_calls: Calls = None) -> str:
    """Gemma 4: ``<|channel>thought\\n…<channel|>``, content, ``<|tool_call>call:NAME{…}<tool_call|>``."""
    text = f"<|channel>thought\n{reasoning}<channel|>" if reasoning is not None else ""
    text += content
    for call in tool_calls or []:
        text += f"<|tool_call>call:{call['name']}{gemma_value(call['arguments'])}<tool_call|>"
    return text


# -- the conversations ----------------------------------------------------------------------------


def replayed_call(name: str, arguments: dict[str, Any], call_id: str = TOOL_CALL_ID) -> dict[str, Any]:
    """An assistant message with one tool call, as the server passes it to the template."""
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}],
    }


def tool_chats(render: Render, *, call_stop: str | None = None, thinking: bool = False) -> list[dict[str, Any]]:
    """The canned chats of one format. ``call_stop``: the token that ends a tool-call turn when it is not
    the tokenizer's eos; ``thinking``: also learn an answer with reasoning (``enable_thinking=True``)."""
    tools = [FORECAST_TOOL]
    call = {"name": "get_forecast", "arguments": FORECAST_ARGS}
    result = {"role": "tool", "tool_call_id": TOOL_CALL_ID, "content": FORECAST_RESULT}
    chats = [
        canned_chat(
            "forecast-tool-call",
            [user(FORECAST_QUESTION)],
            "",
            tools=tools,
            tool_calls=[call],
            render=render,
            stop=call_stop,
        ),
        canned_chat(
            "forecast-tool-result",
            [user(FORECAST_QUESTION), replayed_call(call["name"], FORECAST_ARGS), result],
            FORECAST_ANSWER,
            tools=tools,
            render=render,
        ),
        canned_chat("greeting-with-tools", [user("Hello")], GREETING, tools=tools, render=render),
        canned_chat("capital", [user(CAPITAL_QUESTION)], CAPITAL_ANSWER, render=render),
    ]
    if thinking:
        chats.append(
            canned_chat(
                "capital-thinking",
                [user(CAPITAL_QUESTION)],
                CAPITAL_ANSWER,
                reasoning=CAPITAL_REASONING,
                render=render,
                enable_thinking=True,
            )
        )
    return chats
