"""Gemma 4 tool calls: ``<|tool_call>call:NAME{key:<|"|>text<|"|>,n:5}<tool_call|>``.

Calls follow each other without separators; the argument syntax is described in
:mod:`app.parsers.tools.gemma4_syntax`. Sources for the format: the Gemma 4 chat template shipped with
the checkpoints (it replays a call as ``'<|tool_call>call:' + name + '{' ... '}<tool_call|>'`` with
``format_argument`` writing the values) and vLLM's ``vllm/tool_parsers/gemma4_tool_parser.py``.

Each top-level argument is typed with the tool's JSON schema and streamed once complete, so the
arguments arrive as ``{"k": v``, ``, "k2": v2``, ..., ``}`` (``{}`` without arguments).
"""

from __future__ import annotations

from typing import Any

from app.parsers.scan import split_at_marker
from app.parsers.tools.gemma4_syntax import QUOTE, GemmaSpan, conform, parse_value, unquote
from app.parsers.tools.schema import object_member
from app.parsers.tools.stream import ToolStreamParser

OPEN, CLOSE = "<|tool_call>", "<tool_call|>"
HEAD = "call:"


class Gemma4ToolParser(ToolStreamParser):
    name = "gemma4"
    markers = (OPEN, CLOSE, QUOTE)

    def __init__(self, tools: list[dict[str, Any]] | None = None) -> None:
        super().__init__(tools)
        self._index = -1
        self._func = ""
        self._params = 0
        self._key = ""
        self._span = GemmaSpan()
        self._acc = ""

    def _s_text(self) -> bool:
        before, marker, self._buf = split_at_marker(self._buf, (OPEN, CLOSE), self._final)
        self._content(before)
        if marker == OPEN:
            self._begin_raw(OPEN)
            self._state = "head"
        return marker is not None  # a stray closing token is dropped

    def _s_head(self) -> bool:
        if not self._skip_ws():
            return False
        found = self._expect(HEAD)
        if found is None:
            return False
        self._state = "name" if found else "bad"
        if found:
            self._take(len(HEAD))
        return True

    def _s_name(self) -> bool:
        brace, angle = self._buf.find("{"), self._buf.find("<")
        if brace < 0 or 0 <= angle < brace:
            if angle >= 0:
                self._state = "bad"
            return angle >= 0
        name = self._take(brace + 1)[:-1].strip()
        if not name:
            self._state = "bad"
            return True
        self._func, self._params = name, 0
        self._index = self._start_call(name)
        self._state = "key"
        return True

    def _s_key(self) -> bool:
        if not self._skip_ws():
            return False
        head = self._buf[0]
        if head in ",}":
            self._take(1)
            if head == "}":
                self._close_args()
            return True
        if head == "<" and not self._buf.startswith(QUOTE):
            found = self._expect(CLOSE)
            if found is None or (found is False and QUOTE.startswith(self._buf)):
                return False
            self._close_args()  # the object was left open; ``close`` deals with what follows
            return True
        key_end = 0
        if self._buf.startswith(QUOTE):
            closing = self._buf.find(QUOTE, len(QUOTE))
            if closing < 0:
                return False
            key_end = closing + len(QUOTE)
        colon = self._buf.find(":", key_end)
        if colon < 0:
            return False
        self._key = unquote(self._take(colon + 1)[:-1].strip())
        self._span, self._acc = GemmaSpan(), ""
        self._state = "value"
        return True

    def _s_value(self) -> bool:
        if not self._span.kind and not self._skip_ws():
            return False
        end = self._span.advance(self._buf, 0)
        self._acc += self._take(end)
        if not self._span.done and not self._final:
            return end > 0
        value = conform(parse_value(self._acc), self.schema_for(self._func, self._key))
        self._args(self._index, object_member(self._key, value, first=not self._params))
        self._params += 1
        self._state = "key"
        return True

    def _s_close(self) -> bool:
        return self._end_block(CLOSE)

    def _s_bad(self) -> bool:
        return self._skip_malformed(CLOSE, OPEN, "head")

    def _close_args(self) -> None:
        self._args(self._index, "}" if self._params else "{}")
        self._state = "close"

    def _at_end(self) -> None:
        if self._state in ("head", "name", "bad"):
            self._malformed(self._buf)
            self._buf = ""
        elif self._state in ("key", "value"):
            self._buf = ""
            self._close_args()
        self._state = "text"
