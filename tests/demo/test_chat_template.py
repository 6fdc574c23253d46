"""The tiny models' Qwen3-style chat template: tools, tool responses, thinking and past reasoning."""

from __future__ import annotations

from typing import Any

from app.demo.canned_chats import WEATHER_TOOL
from app.demo.tokenizer import CHAT_TOKENIZER, render_chat


def render(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **kwargs: Any) -> str:
    return render_chat(CHAT_TOKENIZER, {"messages": messages, "tools": tools, "chat_template_kwargs": kwargs})


HI = {"role": "user", "content": "Hi"}


def test_a_plain_turn_and_the_thinking_switch() -> None:
    assert render([HI]) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert render([HI], enable_thinking=False).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_tools_join_the_system_turn() -> None:
    text = render([{"role": "system", "content": "Be brief."}, HI], tools=[WEATHER_TOOL])
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")
    assert '<tools>\n{"type": "function", "function": {"name": "get_weather"' in text
    assert text.count("<|im_start|>system") == 1


def test_calls_and_their_responses() -> None:
    call = {"type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
    text = render(
        [
            HI,
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "content": "r1"},
            {"role": "tool", "content": "r2"},
        ]
    )
    assert '<|im_start|>assistant\n<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call><|im_end|>' in text
    both = "<|im_start|>user\n<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n</tool_response><|im_end|>"
    assert both in text  # consecutive tool messages share one user turn


def test_reasoning_is_kept_only_after_the_last_user_query() -> None:
    text = render(
        [
            {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "A1", "reasoning_content": "R1"},
            {"role": "user", "content": "Q2"},
            {"role": "assistant", "content": "A2", "reasoning_content": "R2"},
        ]
    )
    assert "R1" not in text and "<|im_start|>assistant\nA1<|im_end|>" in text
    assert "<|im_start|>assistant\n<think>\nR2\n</think>\n\nA2" in text
