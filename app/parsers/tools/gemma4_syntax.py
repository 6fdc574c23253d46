"""Gemma 4's argument syntax: ``{key:<|"|>text<|"|>,n:5,flag:true,obj:{k:[1,<|"|>a<|"|>]}}``.

Strings are wrapped in the ``<|"|>`` token, keys are bare (or wrapped the same way), numbers, booleans
and null are bare words, objects and arrays nest with ``{}``/``[]``. This is the shape the Gemma 4 chat
template's ``format_argument`` macro writes when it replays past calls.
"""

from __future__ import annotations

import json
import math
from typing import Any

from app.parsers.scan import partial_suffix
from app.parsers.tools.schema import cast_text, cast_value, schema_types

QUOTE = '<|"|>'
_SCALAR_END = ",}]<"
_NULL_WORDS = ("null", "none", "nil")


class Bare(str):
    """An unquoted scalar, typed later (by the schema, or as a literal)."""

    __slots__ = ()


class GemmaSpan:
    """Finds where one Gemma value ends while its text arrives piece by piece."""

    __slots__ = ("_depth", "_in_string", "done", "kind")

    def __init__(self) -> None:
        self.kind = ""
        self.done = False
        self._depth = 0
        self._in_string = False

    def advance(self, text: str, pos: int) -> int:
        """Consume from ``pos``; returns where it stopped (a split ``<|"|>`` waits for the rest)."""
        n = len(text)
        if not self.kind and pos < n:
            first = text[pos]
            self.kind = "nested" if first in "{[" else "string" if first == "<" else "scalar"
        i = pos
        while i < n:
            if self._in_string:
                end = text.find(QUOTE, i)
                if end < 0:
                    return n - partial_suffix(text[i:], (QUOTE,))
                i = end + len(QUOTE)
                self._in_string = False
                if self.kind == "string":
                    self.done = True
                    return i
                continue
            c = text[i]
            if self.kind == "scalar":
                if c in _SCALAR_END:
                    self.done = True
                    return i
            elif text.startswith(QUOTE, i):
                self._in_string = True
                i += len(QUOTE)
                continue
            elif c == "<" and QUOTE.startswith(text[i:]):
                return i
            elif c in "{[":
                self._depth += 1
            elif c in "}]":
                self._depth -= 1
                if self._depth <= 0:
                    self.done = True
                    return i + 1
            i += 1
        return i


class _Reader:
    """Recursive descent over one complete value's text (lenient: a truncated value reads as far as it goes)."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def _ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n,":
            self.pos += 1

    def value(self) -> Any:
        self._ws()
        text = self.text
        if text.startswith(QUOTE, self.pos):
            return self._string()
        if text.startswith("{", self.pos):
            return self._object()
        if text.startswith("[", self.pos):
            return self._array()
        start = self.pos
        while self.pos < len(text) and text[self.pos] not in ",}]":
            self.pos += 1
        return Bare(text[start : self.pos].strip())

    def _string(self) -> str:
        start = self.pos + len(QUOTE)
        end = self.text.find(QUOTE, start)
        end = len(self.text) if end < 0 else end
        self.pos = end + len(QUOTE)
        return self.text[start:end]

    def _object(self) -> dict[str, Any]:
        self.pos += 1
        out: dict[str, Any] = {}
        while True:
            self._ws()
            if self.pos >= len(self.text) or self.text[self.pos] == "}":
                self.pos += 1
                return out
            after_key = self.pos
            if self.text.startswith(QUOTE, self.pos):
                closing = self.text.find(QUOTE, self.pos + len(QUOTE))
                after_key = self.pos if closing < 0 else closing + len(QUOTE)
            colon = self.text.find(":", after_key)
            if colon < 0:
                self.pos = len(self.text)
                return out
            key = self.text[self.pos : colon].strip()
            self.pos = colon + 1
            out[unquote(key)] = self.value()

    def _array(self) -> list[Any]:
        self.pos += 1
        out: list[Any] = []
        while True:
            self._ws()
            if self.pos >= len(self.text) or self.text[self.pos] == "]":
                self.pos += 1
                return out
            before = self.pos
            out.append(self.value())
            if self.pos == before:
                self.pos += 1


def unquote(key: str) -> str:
    if key.startswith(QUOTE) and key.endswith(QUOTE) and len(key) >= 2 * len(QUOTE):
        return key[len(QUOTE) : -len(QUOTE)]
    return key


def parse_value(text: str) -> Any:
    """A complete Gemma value as Python data (unquoted scalars stay :class:`Bare` until typed)."""
    return _Reader(text).value()


def conform(value: Any, schema: dict[str, Any] | None) -> Any:
    """Type a parsed value by its JSON schema; bare words without a schema read as JSON literals."""
    if isinstance(value, Bare):
        if schema_types(schema):
            return cast_text(str(value), schema)
        if value.lower() in _NULL_WORDS:
            return None
        try:
            literal = json.loads(value)
        except ValueError:
            return str(value)
        return literal if not isinstance(literal, float) or math.isfinite(literal) else str(value)
    if isinstance(value, dict):
        props = schema.get("properties") if isinstance(schema, dict) else None
        props = props if isinstance(props, dict) else {}
        return {key: conform(item, props.get(key)) for key, item in value.items()}
    if isinstance(value, list):
        items = schema.get("items") if isinstance(schema, dict) else None
        return [conform(item, items if isinstance(items, dict) else None) for item in value]
    return cast_value(value, schema)
