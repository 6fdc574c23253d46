"""Typing raw argument text by the tool's JSON schema (for the formats whose values are not JSON)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

_INT = re.compile(r"[-+]?\d+")
_SCALAR_ORDER = ("null", "boolean", "integer", "number", "object", "array")


def tool_schemas(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{name: parameters schema}`` from chat-form tools (``{"type": "function", "function": {...}}``)
    or the flat form (``{"type": "function", "name": ..., "parameters": ...}``)."""
    schemas: dict[str, dict[str, Any]] = {}
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        spec = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        name = spec.get("name")
        if isinstance(name, str):
            params = spec.get("parameters")
            schemas[name] = params if isinstance(params, dict) else {}
    return schemas


def schema_types(schema: dict[str, Any] | None) -> list[str]:
    """The JSON types a schema allows (``type`` as a string or list, or the members of anyOf/oneOf)."""
    if not isinstance(schema, dict):
        return []
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    types: list[str] = []
    for key in ("anyOf", "oneOf"):
        for member in schema.get(key) or []:
            types += [t for t in schema_types(member) if t not in types]
    return types


def _loads(text: str) -> tuple[bool, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return False, None
    if isinstance(value, float) and not math.isfinite(value):
        return False, None
    return True, value


def _as_type(text: str, kind: str) -> tuple[bool, Any]:
    """``text`` as a value of JSON type ``kind``, if it reads as one."""
    word = text.strip()
    if kind == "null":
        return (True, None) if word.lower() in ("null", "none") else (False, None)
    if kind == "boolean":
        return (True, word.lower() == "true") if word.lower() in ("true", "false") else (False, None)
    if kind in ("integer", "number") and _INT.fullmatch(word):
        return True, int(word)
    if kind in ("integer", "number"):
        try:
            number = float(word)
        except ValueError:
            return False, None
        if not math.isfinite(number):
            return False, None
        if kind == "integer":
            return (True, int(number)) if number.is_integer() else (False, None)
        return True, number
    if kind in ("object", "array"):
        ok, value = _loads(word)
        return (ok, value) if ok and isinstance(value, dict if kind == "object" else list) else (False, None)
    return False, None


def cast_text(text: str, schema: dict[str, Any] | None) -> Any:
    """Raw argument text typed by its schema.

    A string type keeps the text; integer, number, boolean and null are read from it; object and array
    are JSON-decoded; text that fits none of the allowed types stays a string. Without a usable type
    (unknown parameter, no schema) the text is tried as JSON, then kept as a string."""
    types = schema_types(schema)
    if not types:
        enum = schema.get("enum") if isinstance(schema, dict) else None
        if isinstance(enum, list) and text in enum:
            return text
        ok, value = _loads(text)
        return value if ok else text
    for kind in _SCALAR_ORDER:
        if kind in types:
            ok, value = _as_type(text, kind)
            if ok:
                return value
    return text


def cast_value(value: Any, schema: dict[str, Any] | None) -> Any:
    """An already-typed value conformed to its schema: strings are read as the schema's non-string
    types when the schema does not allow strings, and objects/arrays are conformed member by member."""
    types = schema_types(schema)
    if isinstance(value, str):
        return cast_text(value, schema) if types and "string" not in types else value
    if isinstance(value, dict):
        props = schema.get("properties") if isinstance(schema, dict) else None
        props = props if isinstance(props, dict) else {}
        return {key: cast_value(item, props.get(key)) for key, item in value.items()}
    if isinstance(value, list):
        items = schema.get("items") if isinstance(schema, dict) else None
        return [cast_value(item, items if isinstance(items, dict) else None) for item in value]
    if types == ["string"] and value is not None:
        return json.dumps(value) if not isinstance(value, bool) else ("true" if value else "false")
    return value


def object_member(key: str, value: Any, *, first: bool) -> str:
    """One member of an arguments object being streamed: ``{"key": value`` first, then ``, "key": value``;
    closing with ``}`` makes the concatenation equal to ``json.dumps`` of the dict (unicode kept)."""
    head = "{" if first else ", "
    return head + json.dumps(key, ensure_ascii=False) + ": " + json.dumps(value, ensure_ascii=False)
