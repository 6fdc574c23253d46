"""Structured output: request fields → an llguidance grammar the engine enforces token by token.

``response_format`` (chat) and ``text.format`` (responses) become JSON-schema grammars; ``tool_choice``
``required`` or a named function becomes a grammar for the model's own tool-call syntax, so a call is
guaranteed rather than hoped for. A schema the library cannot enforce is a 400 naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from llguidance import LLMatcher

from app.errors import InvalidRequest, UnsupportedParameter

# One space after separators, as json.dumps writes and models imitate; no other free whitespace, so a
# weak model cannot pad forever.
_COMPACT: Any = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def _checked(grammar: str, param: str) -> str:
    is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar)
    if is_error:
        raise UnsupportedParameter(f"This schema cannot be enforced: {messages[0].strip()}", param=param)
    return grammar


def json_grammar(schema: Any, param: str) -> str:
    if not isinstance(schema, dict):
        raise InvalidRequest("The JSON schema must be an object.", param=param)
    try:
        grammar = LLMatcher.grammar_from_json_schema(schema, overrides=_COMPACT)
    except ValueError as exc:
        raise InvalidRequest(f"Invalid JSON schema: {exc}", param=param) from exc
    return _checked(grammar, param)


def regex_grammar(pattern: Any, param: str) -> str:
    if not isinstance(pattern, str) or not pattern:
        raise InvalidRequest("A regex response format needs its pattern as a string `value`.", param=param)
    try:
        grammar = LLMatcher.grammar_from_regex(pattern)
    except ValueError as exc:
        raise InvalidRequest(f"Invalid regular expression: {exc}", param=param) from exc
    return _checked(grammar, param)


def response_format_grammar(response_format: dict[str, Any] | None) -> str | None:
    """Chat's ``response_format`` in every form common clients send: OpenAI's ``text`` (no constraint),
    ``json_object`` and ``json_schema``; TGI's and huggingface_hub's ``{"type": "json" | "json_object" |
    "regex", "value": ...}``; and a ``schema`` beside ``json_object`` (instructor's JSON_SCHEMA mode)."""
    kind = (response_format or {}).get("type", "text")
    if kind == "text":
        return None
    spec = response_format or {}
    if kind in ("json_object", "json"):
        given = [key for key in ("value", "schema") if spec.get(key) is not None]
        if len(given) > 1:
            raise InvalidRequest("Give the schema once, as `value` or as `schema`.", param="response_format")
        if given:
            return json_grammar(spec[given[0]], f"response_format.{given[0]}")
        if kind == "json":
            raise InvalidRequest("A `json` response format needs its schema as `value`.", param="response_format.value")
        return json_grammar({"type": "object"}, "response_format")
    if kind == "regex":
        return regex_grammar(spec.get("value"), "response_format.value")
    if kind == "json_schema":
        spec = response_format.get("json_schema") if response_format else None
        if not isinstance(spec, dict) or "schema" not in spec:
            raise InvalidRequest("json_schema needs a `schema`.", param="response_format.json_schema.schema")
        return json_grammar(spec["schema"], "response_format.json_schema.schema")
    raise InvalidRequest(f"Unknown response_format type `{kind}`.", param="response_format.type")


def text_format_grammar(text_format: dict[str, Any]) -> str | None:
    """Responses' ``text.format``: the same kinds, with the schema inline."""
    kind = text_format.get("type", "text")
    if kind == "text":
        return None
    if kind == "json_object":
        return json_grammar({"type": "object"}, "text.format")
    if kind == "json_schema":
        if "schema" not in text_format:
            raise InvalidRequest("json_schema needs a `schema`.", param="text.format.schema")
        return json_grammar(text_format["schema"], "text.format.schema")
    raise InvalidRequest(f"Unknown text.format type `{kind}`.", param="text.format.type")


# -- tool_choice ------------------------------------------------------------------------------------


def _call_schema(tool: dict[str, Any], arguments_key: str) -> dict[str, Any]:
    function = tool["function"]
    parameters = function.get("parameters") or {"type": "object"}
    return {
        "type": "object",
        "properties": {"name": {"const": function["name"]}, arguments_key: parameters},
        "required": ["name", arguments_key],
        "additionalProperties": False,
    }


def _literal(marker: str, tokens: Mapping[str, int]) -> str:
    """A marker that is one token of the vocabulary is matched as that token (by id), else as text."""
    return f"<[{tokens[marker]}]>" if marker in tokens else json.dumps(marker)


def chosen_tools(tools: list[dict[str, Any]], tool_choice: Any, param: str = "tool_choice") -> list[dict[str, Any]]:
    """The tools a ``required`` or named choice allows."""
    if tool_choice == "required":
        return tools
    name = tool_choice.get("name") or tool_choice["function"]["name"]  # checked: one of the two is given
    picked = [tool for tool in tools if tool["function"]["name"] == name]
    if not picked:
        raise InvalidRequest(f"tool_choice names `{name}`, which is not among the tools.", param=param)
    return picked


def tool_call_grammar(
    parser_name: str | None, tools: Iterable[dict[str, Any]], *, parallel: bool, tokens: Mapping[str, int]
) -> str:
    """A grammar that makes the model call one of ``tools`` (several calls when ``parallel``)."""
    tools = list(tools)
    if parser_name in ("hermes", "llama3_json"):
        key = "arguments" if parser_name == "hermes" else "parameters"
        body = json.dumps({"anyOf": [_call_schema(tool, key) for tool in tools], "x-guidance": _COMPACT})
        if parser_name == "hermes":
            call = f'{_literal("<tool_call>", tokens)} "\\n" body "\\n" {_literal("</tool_call>", tokens)}'
            more = '("\\n" call)*' if parallel else ""
        else:
            call, more = "body", ('("; " call)*' if parallel else "")
        lark = f"start: call {more}\ncall: {call}\nbody: %json {body}\n"
    elif parser_name == "mistral":
        items = {"anyOf": [_call_schema(tool, "arguments") for tool in tools]}
        array = {"type": "array", "items": items, "minItems": 1, "x-guidance": _COMPACT}
        if not parallel:
            array["maxItems"] = 1
        lark = f"start: {_literal('[TOOL_CALLS]', tokens)} body\nbody: %json {json.dumps(array)}\n"
    else:
        raise UnsupportedParameter(
            "tool_choice `required` or a named function is not supported for this model's tool-call format.",
            param="tool_choice",
        )
    grammar = LLMatcher.grammar_from_lark(lark)
    return _checked(grammar, "tools")
