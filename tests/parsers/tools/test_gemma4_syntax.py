"""Gemma 4's argument syntax: reading complete values, typing them by schema, and finding where a value
ends while its text streams in."""

from __future__ import annotations

import pytest

from app.parsers.tools.gemma4_syntax import QUOTE, Bare, GemmaSpan, conform, parse_value, unquote

Q = QUOTE


def test_parse_value_reads_nested_objects_arrays_and_quoted_strings() -> None:
    text = f"{{city:{Q}Paris, France{Q},days:3,flags:[true,{Q}a]b{Q}],{Q}odd key{Q}:{{n:null}}}}"
    value = parse_value(text)
    assert value == {"city": "Paris, France", "days": "3", "flags": ["true", "a]b"], "odd key": {"n": "null"}}
    assert isinstance(value["days"], Bare) and not isinstance(value["city"], Bare)


def test_truncated_values_read_as_far_as_they_go() -> None:
    assert parse_value(f"{{a:{Q}unfinished") == {"a": "unfinished"}
    assert parse_value("{a:1,b") == {"a": "1"}
    assert parse_value("[1,2") == ["1", "2"]
    assert parse_value("") == ""


def test_unquote_only_strips_a_whole_quote_pair() -> None:
    assert unquote(f"{Q}key{Q}") == "key"
    assert unquote("key") == "key"
    assert unquote(Q) == Q  # a lone quote token is not a pair


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("5", 5),
        ("-2.5", -2.5),
        ("true", True),
        ("None", None),
        ("nil", None),
        ("NaN", "NaN"),
        ("1e999", "1e999"),
        ("hello", "hello"),
    ],
)
def test_bare_words_without_a_schema_read_as_json_literals(word: str, expected: object) -> None:
    assert conform(Bare(word), None) == expected
    assert type(conform(Bare(word), None)) is type(expected)


def test_the_schema_types_bare_words_and_nested_values() -> None:
    schema = {
        "type": "object",
        "properties": {
            "zip": {"type": "string"},
            "count": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "number"}},
            "label": {"type": "integer"},
        },
    }
    value = parse_value(f"{{zip:02134,count:7,tags:[1,{Q}2.5{Q}],label:{Q}x{Q},extra:false}}")
    assert conform(value, schema) == {"zip": "02134", "count": 7, "tags": [1, 2.5], "label": "x", "extra": False}


def advance_piecewise(text: str, size: int) -> tuple[GemmaSpan, int]:
    """Feed ``text`` in pieces of ``size`` as a parser would: returns the span and where the value ended."""
    span, pos = GemmaSpan(), 0
    for end in range(size, len(text) + size, size):
        pos = span.advance(text[:end], pos)
        if span.done:
            break
    return span, pos


@pytest.mark.parametrize(
    ("text", "kind", "value_end"),
    [
        (f"{Q}a, {{b}}{Q},next:1", "string", len(f"{Q}a, {{b}}{Q}")),
        ("42,next:1", "scalar", 2),
        ("true}", "scalar", 4),
        (f"{{a:[1,{Q}]}}{Q}]}},next:1", "nested", len(f"{{a:[1,{Q}]}}{Q}]}}")),
    ],
)
@pytest.mark.parametrize("size", [1, 2, 3, 100])
def test_span_finds_the_end_of_a_value_in_any_split(text: str, kind: str, value_end: int, size: int) -> None:
    span, pos = advance_piecewise(text, size)
    assert span.done and span.kind == kind and pos == value_end


def test_span_waits_at_a_split_quote_token() -> None:
    span = GemmaSpan()
    assert span.advance(f"{Q}abc<|", 0) == len(Q) + 3  # "<|" may start the closing quote
    assert not span.done
    assert span.advance(f"{Q}abc{Q}", len(Q) + 3) == 2 * len(Q) + 3 and span.done
    unfinished = GemmaSpan()
    assert unfinished.advance("{a:1", 0) == 4 and not unfinished.done
