"""Mistral ``[TOOL_CALLS]`` calls, both tokenizer generations."""

from __future__ import annotations

import pytest

from app.parsers.base import ParsedDelta, ToolCallDelta
from app.parsers.tools.mistral import MistralToolParser
from tests.parsers.helpers import Outcome, parse_all_ways

WEATHER = ("get_weather", '{"location": "Paris"}')


def parse(text: str) -> Outcome:
    return parse_all_ways(lambda: MistralToolParser([]), text, MistralToolParser.markers)


@pytest.mark.parametrize(
    "text",
    [
        '[TOOL_CALLS]get_weather[ARGS]{"location": "Paris"}',
        '[TOOL_CALLS]get_weather{"location": "Paris"}',
        '[TOOL_CALLS]get_weather[CALL_ID]a1B2c3D4e[ARGS]{"location": "Paris"}',
        '[TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Paris"}}]',
        '[TOOL_CALLS] [ {"arguments": {"location": "Paris"}, "name": "get_weather"} ]',
    ],
)
def test_single_call_in_each_format(text: str) -> None:
    assert parse(text) == Outcome(calls=[WEATHER])


def test_content_then_several_calls_v11() -> None:
    text = 'Sure.\n[TOOL_CALLS]get_weather[ARGS]{"location": "Paris"}[TOOL_CALLS]search[ARGS]{"q": "[x] {y}"}'
    assert parse(text) == Outcome(content="Sure.", calls=[WEATHER, ("search", '{"q": "[x] {y}"}')])


def test_several_calls_in_an_array() -> None:
    text = (
        'Hi [TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Paris"}}, {"name": "f", "arguments": {}}]'
    )
    assert parse(text) == Outcome(content="Hi", calls=[WEATHER, ("f", "{}")])


@pytest.mark.parametrize(
    "text",
    ["[TOOL_CALLS] just words", "[TOOL_CALLS][", "[TOOL_CALLS][5]", "[TOOL_CALLS]f[ARGS]oops", "[TOOL_"],
)
def test_malformed_calls_come_back_as_content(text: str) -> None:
    assert parse_all_ways(lambda: MistralToolParser([]), "Ok " + text) == Outcome(content="Ok " + text)


def test_arguments_stream_as_they_arrive() -> None:
    parser = MistralToolParser([])
    assert parser.feed("Ok [TOOL_") == [ParsedDelta(content="Ok")]
    assert parser.feed("CALLS]get_wea") == []
    (head,) = parser.feed('ther[ARGS]{"loc')
    assert (head.tool_calls[0].name, head.tool_calls[0].arguments) == ("get_weather", '{"loc')
    assert parser.feed('ation": "Paris"}') == [
        ParsedDelta(tool_calls=[ToolCallDelta(index=0, arguments='ation": "Paris"}')])
    ]
    assert parser.finish() == []
