"""The state-machine skeleton every tool-call parser builds on.

A parser keeps the not-yet-consumed text in ``_buf`` and runs ``_s_<state>`` handlers until one
reports that it needs more text. Handlers consume from the head of the buffer with ``_take``, which
also records the raw text of the call being read so that a malformed call can be returned as content.

Content rules shared by all formats: whitespace right before a tool call (and between calls) is not
content, the whitespace that starts the content after a call is dropped, and a malformed call comes
back verbatim as content.
"""

from __future__ import annotations

from typing import Any, ClassVar

from app.parsers.base import ParsedDelta
from app.parsers.scan import Emitter, split_at_marker
from app.parsers.tools.schema import tool_schemas


class ToolStreamParser:
    name: ClassVar[str] = ""
    markers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, tools: list[dict[str, Any]] | None = None) -> None:
        self.tools = list(tools or [])
        self.schemas = tool_schemas(self.tools)
        self._buf = ""
        self._raw = ""  # raw text of the call being read, for the malformed case
        self._state = "text"
        self._final = False
        self._out = Emitter()
        self._calls = 0
        self._pending_ws = ""
        self._after_call = False

    # -- the OutputParser protocol ------------------------------------------------------------

    def feed(self, text: str) -> list[ParsedDelta]:
        self._buf += text
        self._drive()
        return self._out.take()

    def finish(self) -> list[ParsedDelta]:
        self._final = True
        self._drive()
        self._at_end()
        if self._buf:
            self._content(self._buf)
            self._buf = ""
        if not self._calls:
            self._out.content(self._pending_ws)
        self._pending_ws = ""
        return self._out.take()

    # -- helpers for the handlers -------------------------------------------------------------

    def _drive(self) -> None:
        while getattr(self, "_s_" + self._state)():
            pass

    def _at_end(self) -> None:
        """Called once at finish, after the last handler run: flush a call left open."""

    def _take(self, size: int) -> str:
        piece, self._buf = self._buf[:size], self._buf[size:]
        self._raw += piece
        return piece

    def _skip_ws(self) -> bool:
        """Drop leading whitespace; True when something else follows."""
        stripped = self._buf.lstrip()
        self._raw += self._buf[: len(self._buf) - len(stripped)]
        self._buf = stripped
        return bool(stripped)

    def _expect(self, literal: str) -> bool | None:
        """Whether the buffer starts with ``literal`` (None: too short to tell yet)."""
        if self._buf.startswith(literal):
            return True
        if not self._final and literal.startswith(self._buf):
            return None
        return False

    def _end_block(self, close: str) -> bool:
        """After a call: skip whitespace and the block's closing marker (when it is there), back to text.
        False while the buffer is too short to tell."""
        found = self._expect(close) if self._skip_ws() else None
        if found is None:
            return False
        if found:
            self._take(len(close))
        self._state = "text"
        return True

    def _skip_malformed(self, close: str, open_: str, reopen: str) -> bool:
        """Inside a call that does not parse: its raw text goes back as content up to the next marker; a
        closing one ends it, an opening one starts a new call in state ``reopen``."""
        before, marker, rest = split_at_marker(self._buf, (close, open_), self._final)
        self._buf = rest
        self._raw += before
        if marker is None:
            return False
        self._malformed(close if marker == close else "")
        if marker == open_:
            self._begin_raw(open_)
        self._state = reopen if marker == open_ else "text"
        return True

    def _begin_raw(self, marker: str) -> None:
        self._raw = marker

    def _content(self, text: str) -> None:
        if self._after_call:
            text = text.lstrip()
            if not text:
                return
            self._after_call = False
        text = self._pending_ws + text
        body = text.rstrip()
        self._pending_ws = text[len(body) :]
        self._out.content(body)

    def _malformed(self, rest: str = "") -> None:
        """Return the raw text of the call being read (and ``rest``) as content."""
        raw, self._raw = self._raw + rest, ""
        self._content(raw)

    def _start_call(self, name: str, arguments: str = "") -> int:
        index = self._calls
        self._calls += 1
        self._pending_ws = ""
        self._after_call = True
        self._out.call_start(index, name, arguments)
        return index

    def _args(self, index: int, text: str) -> None:
        self._out.call_args(index, text)

    def schema_for(self, tool: str, param: str | None = None) -> dict[str, Any] | None:
        """The JSON schema of a tool's parameters, or of one parameter of it."""
        schema = self.schemas.get(tool)
        if param is None or schema is None:
            return schema
        props = schema.get("properties")
        return props.get(param) if isinstance(props, dict) else None
