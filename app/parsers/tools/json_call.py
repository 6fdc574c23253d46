"""Incremental reading of JSON tool calls: ``{"name": "f", "arguments": {...}}``.

:class:`JsonSpan` finds where one JSON value ends while the text arrives piece by piece (it tracks
strings, escapes and nesting depth, it does not validate). :class:`JsonCallReader` walks the call
object key by key and streams the arguments object's own text as it arrives, as soon as the name is
known; arguments given as a JSON string holding an object are decoded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import Enum

_WS = " \t\r\n"
_SCALAR_END = ",}]" + _WS


class JsonSpan:
    """Tracks one JSON value (object, array, string or scalar) across pieces of text."""

    __slots__ = ("_depth", "_escape", "_in_string", "done", "kind")

    def __init__(self) -> None:
        self.kind = ""
        self.done = False
        self._depth = 0
        self._in_string = False
        self._escape = False

    def advance(self, text: str, pos: int) -> int:
        """Consume ``text`` from ``pos``; returns where it stopped (just past the value once ``done``)."""
        if not self.kind and pos < len(text):
            first = text[pos]
            self.kind = "nested" if first in "{[" else "string" if first == '"' else "scalar"
        i, n = pos, len(text)
        while i < n:
            c = text[i]
            i += 1
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif c == "\\":
                    self._escape = True
                elif c == '"':
                    self._in_string = False
                    if self.kind == "string":
                        self.done = True
                        return i
            elif self.kind == "scalar":
                if c in _SCALAR_END:
                    self.done = True
                    return i - 1
            elif c == '"':
                self._in_string = True
            elif c in "{[":
                self._depth += 1
            elif c in "}]":
                self._depth -= 1
                if self._depth <= 0:
                    self.done = True
                    return i
        return i


class Status(Enum):
    RUNNING = "running"
    DONE = "done"
    BAD = "bad"


CallStart = Callable[[str, str], int]  # (name, first arguments text) -> call index
CallArgs = Callable[[int, str], None]


class JsonCallReader:
    """Reads one JSON call object. ``read`` consumes what it can and reports how much; ``status``
    ends as DONE (the call was emitted) or BAD (nothing was emitted: the text is not a call)."""

    def __init__(
        self,
        start: CallStart,
        args: CallArgs,
        *,
        arg_keys: tuple[str, ...] = ("arguments", "parameters"),
        names: frozenset[str] | None = None,
    ) -> None:
        self._start, self._emit_args = start, args
        self._arg_keys, self._names = arg_keys, names
        self.status = Status.RUNNING
        self.index: int | None = None  # set once the call is emitted
        self._state = "open"
        self._key = ""
        self._mode = ""  # how the current value is handled: name, stream, collect, skip
        self._span = JsonSpan()
        self._acc = ""
        self._name: str | None = None
        self._args_text: str | None = None  # arguments read before the name
        self._args_done = False

    @property
    def committed(self) -> bool:
        return self.index is not None

    def read(self, text: str, final: bool) -> int:
        pos = 0
        while self.status is Status.RUNNING:
            step = getattr(self, "_on_" + self._state)(text, pos, final)
            if step is None:
                break
            pos = step
        return pos

    def _fail(self, pos: int) -> int:
        self.status = Status.DONE if self.committed else Status.BAD
        return pos

    @staticmethod
    def _skip_ws(text: str, pos: int) -> int:
        while pos < len(text) and text[pos] in _WS:
            pos += 1
        return pos

    def _on_open(self, text: str, pos: int, final: bool) -> int | None:
        pos = self._skip_ws(text, pos)
        if pos >= len(text):
            return None
        if text[pos] != "{":
            return self._fail(pos)
        self._state = "key"
        return pos + 1

    def _on_key(self, text: str, pos: int, final: bool) -> int | None:
        pos = self._skip_ws(text, pos)
        if pos >= len(text):
            return None
        if text[pos] == "}":
            return self._close(pos + 1)
        if text[pos] != '"':
            return self._fail(pos)
        self._begin_value("key")
        self._state = "value"
        return pos

    def _on_colon(self, text: str, pos: int, final: bool) -> int | None:
        pos = self._skip_ws(text, pos)
        if pos >= len(text):
            return None
        if text[pos] != ":":
            return self._fail(pos)
        self._state = "value_start"
        return pos + 1

    def _on_value_start(self, text: str, pos: int, final: bool) -> int | None:
        pos = self._skip_ws(text, pos)
        if pos >= len(text):
            return None
        first = text[pos]
        if self._key == "name" and self._name is None:
            if first != '"':
                return self._fail(pos)
            self._begin_value("name")
        elif self._key in self._arg_keys and not self._args_done:
            if first not in '{"':
                return self._fail(pos)
            streaming = first == "{" and self._name is not None
            self._begin_value("stream" if streaming else "collect")
            if streaming:
                self.index = self._start(self._name or "", "")
        else:
            self._begin_value("skip")
        self._state = "value"
        return pos

    def _begin_value(self, mode: str) -> None:
        self._mode, self._span, self._acc = mode, JsonSpan(), ""

    def _on_value(self, text: str, pos: int, final: bool) -> int | None:
        end = self._span.advance(text, pos)
        piece = text[pos:end]
        if self._mode == "stream":
            self._emit_args(self.index or 0, piece)
        elif self._mode != "skip":
            self._acc += piece
        if not self._span.done and final and self._span.kind == "scalar":
            self._span.done = True
        if not self._span.done:
            return end if end > pos else None
        self._state = "after"
        if not self._value_done():
            return self._fail(end)
        return end

    def _value_done(self) -> bool:
        mode = self._mode
        if mode == "key":
            key = _decode(self._acc)
            self._key = key if isinstance(key, str) else ""
            self._state = "colon"
            return isinstance(key, str)
        if mode == "name":
            name = _decode(self._acc)
            if not isinstance(name, str) or not name or (self._names is not None and name not in self._names):
                return False
            self._name = name
            if self._args_text is not None:
                self.index = self._start(name, self._args_text)
            return True
        if mode in ("stream", "collect"):
            self._args_done = True
        if mode == "collect":
            args = self._acc.strip() if self._acc.startswith("{") else _object_text(_decode(self._acc))
            if args is None:
                return False
            if self._name is None:
                self._args_text = args
            else:
                self.index = self._start(self._name, args)
        return True

    def _on_after(self, text: str, pos: int, final: bool) -> int | None:
        pos = self._skip_ws(text, pos)
        if pos >= len(text):
            return None
        if text[pos] == ",":
            self._state = "key"
            return pos + 1
        if text[pos] == "}":
            return self._close(pos + 1)
        return self._fail(pos)

    def _close(self, pos: int) -> int:
        if self._name is None:
            return self._fail(pos)
        if not self.committed:
            self.index = self._start(self._name, self._args_text or "{}")
        self.status = Status.DONE
        return pos


def _decode(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _object_text(value: object) -> str | None:
    """The JSON object text inside a JSON string value, if it holds one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if isinstance(_decode(text), dict) else None
