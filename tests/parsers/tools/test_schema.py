"""Typing text by JSON schema, and reading tool definitions."""

from __future__ import annotations

import pytest

from app.parsers.tools.schema import cast_text, cast_value, object_member, schema_types, tool_schemas


def test_tool_schemas_from_chat_and_flat_forms() -> None:
    tools = [
        {"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}},
        {"type": "function", "name": "b", "parameters": {"properties": {}}},
        {"type": "function", "function": {"name": "c"}},
        "junk",
    ]
    assert tool_schemas(tools) == {"a": {"type": "object"}, "b": {"properties": {}}, "c": {}}


def test_schema_types() -> None:
    assert schema_types({"type": "integer"}) == ["integer"]
    assert schema_types({"type": ["string", "null"]}) == ["string", "null"]
    assert schema_types({"anyOf": [{"type": "number"}, {"oneOf": [{"type": "null"}]}]}) == ["number", "null"]
    assert schema_types({"enum": ["a"]}) == [] and schema_types(None) == []


@pytest.mark.parametrize(
    ("text", "schema", "value"),
    [
        ("5", {"type": "integer"}, 5),
        (" -5 ", {"type": "integer"}, -5),
        ("5.5", {"type": "integer"}, "5.5"),
        ("1e3", {"type": "number"}, 1000.0),
        ("inf", {"type": "number"}, "inf"),
        ("FALSE", {"type": "boolean"}, False),
        ("None", {"type": "null"}, None),
        ('{"a": 1}', {"type": "object"}, {"a": 1}),
        ("[1]", {"type": "object"}, "[1]"),
        ("5", {"type": "string"}, "5"),
        ("5", {"type": ["string", "integer"]}, 5),
        ("null", {"type": ["string", "null"]}, None),
        ("5", {"enum": ["5", "6"]}, "5"),
        ("5", None, 5),
        ("[true]", {}, [True]),
        ("words", None, "words"),
        ("NaN", None, "NaN"),
    ],
)
def test_cast_text(text: str, schema: dict | None, value: object) -> None:
    got = cast_text(text, schema)
    assert got == value and type(got) is type(value)


def test_cast_value() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string"}}}
    assert cast_value({"n": "3", "s": 4, "x": "y"}, schema) == {"n": 3, "s": "4", "x": "y"}
    assert cast_value(["1", True], {"type": "array", "items": {"type": "string"}}) == ["1", "true"]
    assert cast_value(None, {"type": "string"}) is None


def test_object_member() -> None:
    assert object_member("k", "é", first=True) + object_member("n", [1], first=False) + "}" == '{"k": "é", "n": [1]}'
