"""Llama 3.1 / 3.2 / 3.3 JSON tool calls: ``{"name": "f", "parameters": {...}}``.

The output is a call only when it starts (after whitespace) with ``{`` or ``<|python_tag|>``; several
calls may be separated by ``;``. Anything else is plain content, untouched. ``"arguments"`` is accepted
for ``"parameters"``. When tools were given, an object naming none of them is not a call (so a JSON
answer stays content). ``<|python_tag|>`` later in the content also opens calls, since the tag never
belongs in content.
"""

from __future__ import annotations

from typing import Any

from app.parsers.scan import split_at_marker
from app.parsers.tools.json_call import JsonCallReader, Status
from app.parsers.tools.stream import ToolStreamParser

PYTHON_TAG = "<|python_tag|>"


class Llama3JsonToolParser(ToolStreamParser):
    name = "llama3_json"
    markers = (PYTHON_TAG,)

    def __init__(self, tools: list[dict[str, Any]] | None = None) -> None:
        super().__init__(tools)
        self._names = frozenset(self.schemas) if self.schemas else None
        self._reader: JsonCallReader | None = None
        self._state = "lead"

    def _s_lead(self) -> bool:
        body = self._buf.lstrip()
        if not body:
            return False
        if body.startswith("{"):
            self._buf = body
            self._state = "calls"
            return True
        found = self._expect_at(body, PYTHON_TAG)
        if found is None:
            return False
        if found:
            self._buf = body[len(PYTHON_TAG) :]
            self._state = "calls"
        else:
            self._state = "plain"
        return True

    def _expect_at(self, text: str, literal: str) -> bool | None:
        if text.startswith(literal):
            return True
        return None if not self._final and literal.startswith(text) else False

    def _s_plain(self) -> bool:
        before, marker, self._buf = split_at_marker(self._buf, self.markers, self._final)
        self._plain(before)
        if marker is not None:
            self._state = "calls"
        return marker is not None

    def _plain(self, text: str) -> None:
        """Content as written (after any whitespace held back by a call before it)."""
        if text:
            self._out.content(self._pending_ws + text)
            self._pending_ws = ""
            self._after_call = False

    def _s_calls(self) -> bool:
        self._buf = self._buf.lstrip(" \t\r\n;")
        if not self._buf:
            return False
        if self._buf.startswith(PYTHON_TAG):
            self._buf = self._buf[len(PYTHON_TAG) :]
            return True
        if self._buf[0] != "{":
            if not self._final and PYTHON_TAG.startswith(self._buf):
                return False
            self._state = "tail"
            return True
        self._begin_raw("")
        self._reader = JsonCallReader(
            self._start_call, self._args, arg_keys=("parameters", "arguments"), names=self._names
        )
        self._state = "call"
        return True

    def _s_call(self) -> bool:
        assert self._reader is not None
        self._take(self._reader.read(self._buf, self._final))
        if self._reader.status is Status.RUNNING:
            return False
        if self._reader.status is Status.DONE:
            self._state = "calls"
        else:
            self._malformed()
            self._state = "plain"
        return True

    def _s_tail(self) -> bool:
        before, marker, self._buf = split_at_marker(self._buf, self.markers, self._final)
        self._content(before)
        if marker is not None:
            self._state = "calls"
        return marker is not None

    def _at_end(self) -> None:
        if self._state == "call" and self._reader and not self._reader.committed:
            self._malformed(self._buf)
            self._buf = ""
        elif self._state in ("lead", "plain"):
            self._plain(self._buf)
            self._buf = ""
