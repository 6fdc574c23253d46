"""Conversations the tiny chat model is trained on (and that tests assert against).

Every entry of :data:`CANNED_CHATS` is a dict with:

* ``name``: short identifier.
* ``messages``: OpenAI-style prompt messages (the model answers the last user/tool turn).
* ``tools``: OpenAI ``tools`` list or ``None``.
* ``chat_template_kwargs``: extra template variables (``{"enable_thinking": False}`` ...).
  ``{}`` means the template default, which (like Qwen3) has thinking enabled.
* ``reasoning``, ``content``, ``tool_calls``: the intended parsed answer
  (``tool_calls`` items are ``{"name": str, "arguments": dict}``).
* ``completion``: the exact raw text the model generates greedily before ``<|im_end|>``.
* ``stop``: the token that ends the completion when it is not the tokenizer's eos (else None).

:func:`canned_chat` builds one; other output formats pass their own ``render``
(see :mod:`tests.fixtures.tool_chats`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "City name"}},
            "required": ["location"],
        },
    },
}

_CAPITAL_Q = "What is the capital of France?"
_WEATHER_Q = "What is the weather in Paris?"
_WEATHER_ARGS = {"location": "Paris"}
_WEATHER_RESULT = '{"temperature": 18, "condition": "sunny"}'


def render_completion(
    content: str, reasoning: str | None = None, tool_calls: list[dict[str, Any]] | None = None
) -> str:
    """Raw model output for a parsed answer, in the Qwen3 output format."""
    text = f"<think>\n{reasoning}\n</think>\n\n" if reasoning is not None else ""
    text += content
    for i, call in enumerate(tool_calls or []):
        if i or content:
            text += "\n"
        payload = json.dumps({"name": call["name"], "arguments": call["arguments"]}, ensure_ascii=False)
        text += f"<tool_call>\n{payload}\n</tool_call>"
    return text


Render = Callable[[str, str | None, list[dict[str, Any]] | None], str]


def canned_chat(
    name: str,
    messages: list[dict[str, Any]],
    content: str,
    *,
    tools: list[dict[str, Any]] | None = None,
    reasoning: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    render: Render = render_completion,
    stop: str | None = None,
    **template_kwargs: Any,
) -> dict[str, Any]:
    """One canned chat (see the module docstring); ``render`` writes the parsed answer as raw output."""
    return {
        "name": name,
        "messages": messages,
        "tools": tools,
        "chat_template_kwargs": template_kwargs,
        "reasoning": reasoning,
        "content": content,
        "tool_calls": tool_calls or [],
        "completion": render(content, reasoning, tool_calls),
        "stop": stop,
    }


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _name_chat(name: str) -> dict[str, Any]:
    messages = [
        user(f"My name is {name}."),
        {"role": "assistant", "content": f"Nice to meet you, {name}!"},
        user("What is my name?"),
    ]
    return canned_chat(f"name-{name.lower()}", messages, f"Your name is {name}.")


GREETING = "Hello! I am a tiny demo model served by hfserve."
CAPITAL_ANSWER = "The capital of France is Paris."

CANNED_CHATS: list[dict[str, Any]] = [
    canned_chat("greeting", [user("Hello")], GREETING),
    canned_chat("greeting-no-thinking", [user("Hello")], GREETING, enable_thinking=False),
    canned_chat("capital-no-thinking", [user(_CAPITAL_Q)], CAPITAL_ANSWER, enable_thinking=False),
    canned_chat(
        "capital-thinking",
        [user(_CAPITAL_Q)],
        CAPITAL_ANSWER,
        reasoning="The user asks for the capital of France. It is Paris.",
        enable_thinking=True,
    ),
    canned_chat(
        "weather-tool-call",
        [user(_WEATHER_Q)],
        "",
        tools=[WEATHER_TOOL],
        tool_calls=[{"name": "get_weather", "arguments": _WEATHER_ARGS}],
    ),
    canned_chat(
        "weather-tool-result",
        [
            user(_WEATHER_Q),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_0",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": json.dumps(_WEATHER_ARGS)},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_0", "content": _WEATHER_RESULT},
        ],
        "It is sunny and 18 degrees in Paris.",
        tools=[WEATHER_TOOL],
    ),
    _name_chat("Alice"),
    _name_chat("Bob"),
]
"""Training conversations; see the module docstring for the keys."""
