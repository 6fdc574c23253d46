"""Hermes / Qwen2.5 / Qwen3 tool calls: ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``.

Several calls may follow each other (or share one block), content may precede them, and
``"parameters"`` is accepted for ``"arguments"``. The arguments object streams as the model writes it,
without waiting for the closing tag. A block that does not hold a call object comes back verbatim as
content.
"""

from __future__ import annotations

from typing import Any

from app.parsers.scan import split_at_marker
from app.parsers.tools.json_call import JsonCallReader, Status
from app.parsers.tools.stream import ToolStreamParser

OPEN, CLOSE = "<tool_call>", "</tool_call>"


class HermesToolParser(ToolStreamParser):
    name = "hermes"
    markers = (OPEN, CLOSE)

    def __init__(self, tools: list[dict[str, Any]] | None = None) -> None:
        super().__init__(tools)
        self._reader: JsonCallReader | None = None

    def _open_call(self, marker: str = OPEN) -> None:
        self._begin_raw(marker)
        self._reader = JsonCallReader(self._start_call, self._args)
        self._state = "call"

    def _s_text(self) -> bool:
        before, marker, self._buf = split_at_marker(self._buf, self.markers, self._final)
        self._content(before)
        if marker == OPEN:
            self._open_call()
        return marker is not None  # a stray closing tag is dropped

    def _s_call(self) -> bool:
        assert self._reader is not None
        self._take(self._reader.read(self._buf, self._final))
        if self._reader.status is Status.RUNNING:
            return False
        self._state = "close" if self._reader.status is Status.DONE else "bad"
        return True

    def _s_close(self) -> bool:
        self._buf = self._buf.lstrip("} \t\r\n")  # a surplus closing brace is a common slip
        if not self._buf:
            return False
        if self._buf[0] == "{":  # another call object in the same block
            self._open_call("")
            return True
        found = self._expect(CLOSE)
        if found is None:
            return False
        if found:
            self._take(len(CLOSE))
        self._state = "text"
        return True

    def _s_bad(self) -> bool:
        before, marker, rest = split_at_marker(self._buf, self.markers, self._final)
        self._buf = rest
        self._raw += before
        if marker is None:
            return False
        if marker == CLOSE:
            self._malformed(CLOSE)
            self._state = "text"
        else:
            self._malformed()
            self._open_call()
        return True

    def _at_end(self) -> None:
        if self._state == "bad" or (self._state == "call" and self._reader and not self._reader.committed):
            self._malformed(self._buf)
            self._buf = ""
            self._state = "text"
