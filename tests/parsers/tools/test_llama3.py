"""Llama 3.x JSON calls."""

from __future__ import annotations

import pytest

from app.demo.canned_chats import WEATHER_TOOL
from app.parsers.base import ParsedDelta
from app.parsers.tools.llama3 import Llama3JsonToolParser
from tests.parsers.helpers import Outcome, parse_all_ways

SEARCH_TOOL = {"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}
TOOLS = [WEATHER_TOOL, SEARCH_TOOL]


def parse(text: str, tools: list[dict] = TOOLS) -> Outcome:
    return parse_all_ways(lambda: Llama3JsonToolParser(tools), text, Llama3JsonToolParser.markers)


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "get_weather", "parameters": {"location": "Paris"}}',
        '\n  {"name": "get_weather", "parameters": {"location": "Paris"}}\n',
        '<|python_tag|>{"name": "get_weather", "parameters": {"location": "Paris"}}',
        '{"name": "get_weather", "arguments": {"location": "Paris"}}',
    ],
)
def test_single_call(text: str) -> None:
    assert parse(text) == Outcome(calls=[("get_weather", '{"location": "Paris"}')])


def test_calls_separated_by_semicolons() -> None:
    text = (
        '<|python_tag|>{"name": "get_weather", "parameters": {"location": "Paris"}}; '
        '{"name": "search", "parameters": {"q": "a;b"}}'
    )
    assert parse(text).calls == [("get_weather", '{"location": "Paris"}'), ("search", '{"q": "a;b"}')]


@pytest.mark.parametrize(
    "text",
    [
        "The weather is nice.",
        '  Answer: {"name": "get_weather", "parameters": {}}',
        '{"answer": 42}',
        '{"name": "unknown_tool", "parameters": {}}',
        '{"name": "get_weather", "param',
        "<|python",
    ],
)
def test_everything_else_is_content(text: str) -> None:
    assert parse(text) == Outcome(content=text)


def test_truncated_arguments_keep_what_was_streamed() -> None:
    text = '{"name": "get_weather", "parameters": {"location": "Par'
    assert parse(text) == Outcome(calls=[("get_weather", '{"location": "Par')])


def test_without_tools_any_name_is_accepted() -> None:
    assert parse('{"name": "anything", "parameters": {}}', tools=[]).calls == [("anything", "{}")]


def test_python_tag_after_content_opens_calls() -> None:
    text = 'Checking.<|python_tag|>{"name": "search", "parameters": {"q": "x"}}'
    assert parse(text) == Outcome(content="Checking.", calls=[("search", '{"q": "x"}')])


def test_content_is_released_once_it_cannot_be_a_call() -> None:
    parser = Llama3JsonToolParser(TOOLS)
    assert parser.feed("  ") == []
    assert parser.feed("<|py") == []
    assert parser.feed("x") == [ParsedDelta(content="  <|pyx")]
    assert parser.feed(" more") == [ParsedDelta(content=" more")]
    assert parser.finish() == []
