"""Qwen3-Coder / Qwen3.5 XML calls, typed by the tool schema."""

from __future__ import annotations

import json

import pytest

from app.parsers.base import ParsedDelta, ToolCallDelta
from app.parsers.tools.qwen3_coder import Qwen3CoderToolParser
from tests.parsers.helpers import Outcome, parse_all_ways

PROPS = {
    "count": {"type": "integer"},
    "ratio": {"type": "number"},
    "flag": {"type": "boolean"},
    "label": {"type": "string"},
    "options": {"type": "object"},
    "items": {"type": "array"},
    "nothing": {"type": "null"},
    "maybe": {"type": ["integer", "null"]},
}
TOOLS = [{"type": "function", "function": {"name": "run", "parameters": {"type": "object", "properties": PROPS}}}]


def parse(text: str) -> Outcome:
    return parse_all_ways(lambda: Qwen3CoderToolParser(TOOLS), text, Qwen3CoderToolParser.markers)


def call(name: str, params: dict[str, str]) -> str:
    body = "".join(f"<parameter={key}>\n{value}\n</parameter>\n" for key, value in params.items())
    return f"<tool_call>\n<function={name}>\n{body}</function>\n</tool_call>"


def test_values_are_typed_by_the_schema() -> None:
    params = {
        "count": "42",
        "ratio": "0.5",
        "flag": "True",
        "label": "007",
        "options": '{"deep": [1, 2]}',
        "items": '["a", 3]',
        "nothing": "null",
        "maybe": "None",
        "unknown_json": '{"k": true}',
        "unknown_text": "plain words",
    }
    got = parse("I'll run it.\n\n" + call("run", params))
    assert got.content == "I'll run it."
    expected = {
        "count": 42,
        "ratio": 0.5,
        "flag": True,
        "label": "007",
        "options": {"deep": [1, 2]},
        "items": ["a", 3],
        "nothing": None,
        "maybe": None,
        "unknown_json": {"k": True},
        "unknown_text": "plain words",
    }
    assert got.calls == [("run", json.dumps(expected, ensure_ascii=False))]


@pytest.mark.parametrize(
    ("param", "raw", "value"),
    [
        ("count", "4.0", 4),
        ("count", "four", "four"),
        ("ratio", "3", 3),
        ("ratio", "nan", "nan"),
        ("flag", "yes", "yes"),
        ("options", "{not json", "{not json"),
        ("items", '{"an": "object"}', '{"an": "object"}'),
        ("label", "  spaced\n\nlines  ", "  spaced\n\nlines  "),
        ("label", "null", "null"),
    ],
)
def test_values_that_do_not_fit_stay_text(param: str, raw: str, value: object) -> None:
    assert parse(call("run", {param: raw})).arguments() == [{param: value}]


def test_several_calls_and_unicode() -> None:
    text = call("run", {"label": "café ☕"}) + "\n" + call("other", {}) + "\n" + call("run", {"count": "1"})
    got = parse(text)
    assert got.calls == [("run", '{"label": "café ☕"}'), ("other", "{}"), ("run", '{"count": 1}')]


def test_tolerates_missing_wrappers_and_closing_tags() -> None:
    text = "<function=run>\n<parameter=count>\n5\n<parameter=label>\nx\n</function>"
    assert parse(text).calls == [("run", '{"count": 5, "label": "x"}')]
    text = "<tool_call>\n<function=run>\n<parameter=count>\n5\n</parameter>\n</tool_call>after"
    assert parse(text) == Outcome(content="after", calls=[("run", '{"count": 5}')])


def test_truncated_output_closes_the_arguments() -> None:
    assert parse("<tool_call>\n<function=run>\n<parameter=label>\nhalf a").calls == [("run", '{"label": "half a"}')]
    assert parse("<tool_call>\n<function=run>\n<parameter=lab").calls == [("run", "{}")]


@pytest.mark.parametrize(
    "text",
    [
        "<tool_call>\nfree text\n</tool_call>",
        "<tool_call>\n<function=>\n</function>\n</tool_call>",
        "<tool_call>\n<func",
    ],
)
def test_malformed_blocks_come_back_as_content(text: str) -> None:
    assert parse_all_ways(lambda: Qwen3CoderToolParser(TOOLS), "See: " + text) == Outcome(content="See: " + text)


def test_arguments_stream_parameter_by_parameter() -> None:
    parser = Qwen3CoderToolParser(TOOLS)
    assert parser.feed("<tool_call>\n<function=ru") == []
    (head,) = parser.feed("n>\n<parameter=count>\n1")
    assert head.tool_calls[0].name == "run" and head.tool_calls[0].arguments == ""
    assert parser.feed("2\n</param") == []
    assert parser.feed("eter>\n") == [ParsedDelta(tool_calls=[ToolCallDelta(index=0, arguments='{"count": 12')])]
    assert parser.feed("<parameter=flag>\nfalse\n</parameter>\n") == [
        ParsedDelta(tool_calls=[ToolCallDelta(index=0, arguments=', "flag": false')])
    ]
    assert parser.feed("</function>") == [ParsedDelta(tool_calls=[ToolCallDelta(index=0, arguments="}")])]
    assert parser.feed("\n</tool_call>") == []
    assert parser.finish() == []
