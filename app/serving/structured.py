"""Structured output: request fields → an llguidance grammar the engine enforces token by token.

``response_format`` (chat) and ``text.format`` (responses) become JSON-schema grammars; vLLM's
``structured_outputs`` object and its older ``guided_*`` fields (chat and completions) become JSON-schema,
regex, choice or Lark grammars (GBNF is converted to Lark); ``tool_choice``
``required`` or a named function becomes a grammar for the model's own tool-call syntax, so a call is
guaranteed rather than hoped for. A schema the library cannot enforce is a 400 naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from llguidance import LLMatcher
from llguidance.gbnf_to_lark import GbnfToLarkError, any_to_lark

from app.errors import InvalidRequest, UnsupportedParameter

# One space after separators, as json.dumps writes and models imitate; no other free whitespace, so a
# weak model cannot pad forever.
_COMPACT: Any = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def _checked(grammar: str, param: str, what: str = "schema") -> str:
    is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar)
    if is_error:
        raise UnsupportedParameter(f"This {what} cannot be enforced: {messages[0].strip()}", param=param)
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
        raise InvalidRequest("A regex constraint needs its pattern as a non-empty string.", param=param)
    try:
        grammar = LLMatcher.grammar_from_regex(pattern)
    except ValueError as exc:
        raise InvalidRequest(f"Invalid regular expression: {exc}", param=param) from exc
    return _checked(grammar, param, "regular expression")


def choice_grammar(choices: Any, param: str) -> str:
    """Exactly one of the given strings."""
    if not isinstance(choices, list) or not choices or not all(isinstance(c, str) and c for c in choices):
        raise InvalidRequest("A choice constraint needs a non-empty list of non-empty strings.", param=param)
    lark = "start: " + " | ".join(json.dumps(choice) for choice in dict.fromkeys(choices)) + "\n"
    return _checked(LLMatcher.grammar_from_lark(lark), param, "choice")


def lark_grammar(text: Any, param: str) -> str:
    """A context-free grammar in Lark syntax (llguidance's dialect), or in GBNF/EBNF (``root ::= ...``),
    which is converted to Lark first."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest("A grammar constraint needs the grammar as a non-empty string.", param=param)
    try:
        lark = any_to_lark(text)
    except GbnfToLarkError as exc:
        raise InvalidRequest(f"Invalid grammar: {exc}", param=param) from exc
    return _checked(LLMatcher.grammar_from_lark(lark), param, "grammar")


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


# -- vLLM's structured outputs -----------------------------------------------------------------------

_STRUCTURED_KINDS = ("json", "regex", "choice", "grammar", "json_object")
# Options of vLLM's structured_outputs that change nothing here: whitespace is always compact, and there
# is no other backend to fall back to.
_STRUCTURED_NO_OPS = frozenset({"disable_any_whitespace", "disable_fallback"})
GUIDED_FIELDS = {
    "guided_json": "json",
    "guided_regex": "regex",
    "guided_choice": "choice",
    "guided_grammar": "grammar",
}


def _schema_value(value: Any, param: str) -> Any:
    """vLLM takes a schema as an object or as JSON text."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise InvalidRequest(f"The JSON schema is not valid JSON: {exc}", param=param) from exc


def _constraint_grammar(kind: str, value: Any, param: str) -> str:
    if kind == "json":
        return json_grammar(_schema_value(value, param), param)
    if kind == "json_object":
        return json_grammar({"type": "object"}, param)
    if kind == "regex":
        return regex_grammar(value, param)
    if kind == "choice":
        return choice_grammar(value, param)
    return lark_grammar(value, param)


def _given_constraints(
    structured_outputs: Mapping[str, Any] | None, guided: Mapping[str, Any]
) -> list[tuple[str, str, Any]]:
    """(param, kind, value) for every constraint set in ``structured_outputs`` and the ``guided_*`` fields."""
    given = []
    for key, value in (structured_outputs or {}).items():
        if value is None or value is False or key in _STRUCTURED_NO_OPS:
            continue
        if key not in _STRUCTURED_KINDS:
            raise UnsupportedParameter(f"structured_outputs.{key} is not supported.", param=f"structured_outputs.{key}")
        given.append((f"structured_outputs.{key}", key, value))
    given += [(name, GUIDED_FIELDS[name], value) for name, value in guided.items() if value is not None]
    return given


def output_constraint(
    response_format: dict[str, Any] | None = None,
    structured_outputs: Mapping[str, Any] | None = None,
    **guided: Any,
) -> str | None:
    """The one grammar a chat or completions request asks for, from ``response_format``, vLLM's
    ``structured_outputs`` or its ``guided_json``/``guided_regex``/``guided_choice``/``guided_grammar``
    (``guided``). Two constraints at once are a 400 naming the second."""
    given = _given_constraints(structured_outputs, guided)
    if (response_format or {}).get("type", "text") != "text":
        given.insert(0, ("response_format", "response_format", response_format))
    if len(given) > 1:
        raise InvalidRequest(
            f"`{given[0][0]}` and `{given[1][0]}` both constrain the output; give one of them.", param=given[1][0]
        )
    if not given:
        return None
    param, kind, value = given[0]
    return response_format_grammar(value) if kind == "response_format" else _constraint_grammar(kind, value, param)


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
