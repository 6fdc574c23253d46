"""Mistral tool calls after the ``[TOOL_CALLS]`` token, in either tokenizer generation:

* before v11: a JSON array, ``[TOOL_CALLS][{"name": "f", "arguments": {...}}, ...]``;
* v11 and later: ``[TOOL_CALLS]NAME[ARGS]{...}`` per call (``[TOOL_CALLS]NAME{...}`` when the
  ``[ARGS]`` token was dropped in decoding), optionally ``[CALL_ID]id`` before ``[ARGS]``; the model's
  call id is not used (ids here are always ``call_`` + 24 hex).

Content before ``[TOOL_CALLS]`` is content. Arguments stream as the model writes them.
"""

from __future__ import annotations

from typing import Any

from app.parsers.scan import find_marker, split_at_marker
from app.parsers.tools.json_call import JsonCallReader, JsonSpan, Status
from app.parsers.tools.stream import ToolStreamParser

TOOL_CALLS, ARGS, CALL_ID = "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"
_MAX_NAME = 256


class MistralToolParser(ToolStreamParser):
    name = "mistral"
    markers = (TOOL_CALLS, ARGS, CALL_ID)

    def __init__(self, tools: list[dict[str, Any]] | None = None) -> None:
        super().__init__(tools)
        self._reader: JsonCallReader | None = None
        self._span = JsonSpan()
        self._index = -1
        self._func = ""

    def _s_text(self) -> bool:
        before, marker, self._buf = split_at_marker(self._buf, (TOOL_CALLS,), self._final)
        self._content(before)
        if marker is None:
            return False
        self._begin_raw(TOOL_CALLS)
        self._state = "start"
        return True

    def _s_start(self) -> bool:
        if not self._skip_ws():
            return False
        if self._buf[0] == "[":
            self._take(1)
            self._state = "item"
        else:
            self._state = "name"
        return True

    # -- v11+: NAME[ARGS]{...} ---------------------------------------------------------------

    def _s_name(self) -> bool:
        found = find_marker(self._buf, (ARGS, CALL_ID, "{"))
        if found is None:
            if len(self._buf) > _MAX_NAME:
                self._state = "bad"
            return self._state == "bad"
        pos, marker = found
        self._func = self._take(pos).strip()
        if not self._func or any(c in self._func for c in "[]{}\n"):
            self._state = "bad"
            return True
        self._state = "call_id" if marker == CALL_ID else "args"
        if marker != "{":
            self._take(len(marker))
        return True

    def _s_call_id(self) -> bool:
        found = find_marker(self._buf, (ARGS, "{"))
        if found is None:
            return False
        pos, marker = found
        self._take(pos + (len(marker) if marker == ARGS else 0))
        self._state = "args"
        return True

    def _s_args(self) -> bool:
        if not self._skip_ws():
            return False
        if self._buf[0] != "{":
            self._state = "bad"
            return True
        self._index = self._start_call(self._func)
        self._span = JsonSpan()
        self._state = "stream"
        return True

    def _s_stream(self) -> bool:
        end = self._span.advance(self._buf, 0)
        self._args(self._index, self._take(end))
        if self._span.done:
            self._state = "next"
        return self._span.done

    def _s_next(self) -> bool:
        if not self._skip_ws():
            return False
        found = self._expect(TOOL_CALLS)
        if found is None:
            return False
        if found:
            self._begin_raw(self._take(len(TOOL_CALLS)))
        self._state = "start" if found else "text"
        return True

    # -- before v11: a JSON array of call objects --------------------------------------------

    def _s_item(self) -> bool:
        self._buf = self._buf.lstrip(" \t\r\n,")
        if not self._buf:
            return False
        if self._buf[0] == "]":
            self._take(1)
            self._state = "text"
            return True
        if self._buf[0] != "{":
            self._state = "bad"
            return True
        self._reader = JsonCallReader(self._start_call, self._args)
        self._state = "item_call"
        return True

    def _s_item_call(self) -> bool:
        assert self._reader is not None
        self._take(self._reader.read(self._buf, self._final))
        if self._reader.status is Status.RUNNING:
            return False
        if self._reader.status is Status.DONE:
            self._raw = ""  # what a later malformed item gives back starts after this call
            self._state = "item"
        else:
            self._state = "bad"
        return True

    def _s_bad(self) -> bool:
        """Not a call: the rest of the output is content, verbatim."""
        self._malformed(self._buf)
        self._buf = ""
        self._state = "dump"
        return False

    def _s_dump(self) -> bool:
        self._content(self._buf)
        self._buf = ""
        return False

    def _at_end(self) -> None:
        open_call = self._state in ("start", "name", "call_id", "args", "item", "bad")
        if open_call or (self._state == "item_call" and self._reader and not self._reader.committed):
            self._malformed(self._buf)
            self._buf = ""
