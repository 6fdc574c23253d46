"""Reasoning and tool calls together, as one choice sees them."""

from __future__ import annotations

import json

import pytest

from app.demo.canned_chats import CANNED_CHATS, WEATHER_TOOL, render_completion
from app.parsers.base import ParsedDelta
from app.parsers.choice import ChoiceParser
from app.parsers.reasoning import GEMMA4, THINK, ReasoningParser
from app.parsers.tools.gemma4 import Gemma4ToolParser
from app.parsers.tools.hermes import HermesToolParser
from tests.parsers.helpers import Outcome, parse_all_ways

HERMES_THINK_MARKERS = ("<think>", "</think>", "<tool_call>", "</tool_call>")


@pytest.mark.parametrize("chat", CANNED_CHATS, ids=[chat["name"] for chat in CANNED_CHATS])
def test_canned_completions_parse_to_their_intended_answer(chat: dict) -> None:
    got = parse_all_ways(
        lambda: ChoiceParser(THINK(), HermesToolParser(chat["tools"])), chat["completion"], HERMES_THINK_MARKERS
    )
    assert got.content == chat["content"]
    assert got.reasoning == (chat["reasoning"] or "")
    assert [(name, json.loads(args)) for name, args in got.calls] == [
        (call["name"], call["arguments"]) for call in chat["tool_calls"]
    ]


def test_reasoning_then_content_then_calls() -> None:
    calls = [{"name": "get_weather", "arguments": {"location": "Paris"}}, {"name": "get_weather", "arguments": {}}]
    text = render_completion("Checking both.", "I need the <tool_call> tool twice.", calls)
    got = parse_all_ways(lambda: ChoiceParser(ReasoningParser(), HermesToolParser([WEATHER_TOOL])), text)
    assert got == Outcome(
        content="Checking both.",
        reasoning="I need the <tool_call> tool twice.",
        calls=[("get_weather", '{"location": "Paris"}'), ("get_weather", "{}")],
    )


def test_inside_mode_with_a_call() -> None:
    text = 'plan it\n</think>\n\n<tool_call>\n{"name": "get_weather", "arguments": {"location": "Rome"}}\n</tool_call>'
    got = parse_all_ways(lambda: ChoiceParser(THINK(inside=True), HermesToolParser([WEATHER_TOOL])), text)
    assert got == Outcome(reasoning="plan it", calls=[("get_weather", '{"location": "Rome"}')])


def test_gemma4_thinking_and_call() -> None:
    text = '<|channel>thought\nNeed weather.<channel|><|tool_call>call:get_weather{location:<|"|>Oslo<|"|>}<tool_call|>'
    got = parse_all_ways(lambda: ChoiceParser(GEMMA4(), Gemma4ToolParser([WEATHER_TOOL])), text)
    assert got == Outcome(reasoning="Need weather.", calls=[("get_weather", '{"location": "Oslo"}')])


def test_order_of_deltas_is_kept() -> None:
    parser = ChoiceParser(ReasoningParser(), HermesToolParser([]))
    out = parser.feed('<think>r</think>c<tool_call>{"name": "f", "arguments": {}}</tool_call>')
    out += parser.finish()
    kinds = ["reasoning" if d.reasoning else "content" if d.content else "tools" for d in out]
    assert kinds == ["reasoning", "content", "tools"]


@pytest.mark.parametrize("parser", [ChoiceParser(), ChoiceParser(None, None)])
def test_without_stages_it_is_plain_text(parser: ChoiceParser) -> None:
    assert parser.feed("<think>a</think><tool_call>") == [ParsedDelta(content="<think>a</think><tool_call>")]
    assert parser.feed("") == []
    assert parser.finish() == []


def test_reasoning_only_and_tools_only() -> None:
    got = parse_all_ways(lambda: ChoiceParser(ReasoningParser(), None), "<think>a</think><tool_call>x</tool_call>")
    assert got == Outcome(content="<tool_call>x</tool_call>", reasoning="a")
    got = parse_all_ways(lambda: ChoiceParser(None, HermesToolParser([])), "<think>a</think>")
    assert got == Outcome(content="<think>a</think>")
