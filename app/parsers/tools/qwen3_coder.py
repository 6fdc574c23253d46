"""Qwen3-Coder / Qwen3.5 XML tool calls::

    <tool_call>
    <function=NAME>
    <parameter=P>
    VALUE
    </parameter>
    </function>
    </tool_call>

Values are raw text (one newline after the opening tag and one before the closing tag are layout),
typed with the tool's JSON schema. The arguments stream as JSON built parameter by parameter:
``{"P": value`` when the first parameter closes, ``, "Q": value`` for each next one, ``}`` at
``</function>`` (``{}`` without parameters), so that their concatenation is ``json.dumps`` of the dict.
A missing ``</parameter>`` is tolerated (the next tag ends the value), as is a missing ``<tool_call>``.
"""

from __future__ import annotations

from typing import Any

from app.parsers.scan import find_marker, split_at_marker
from app.parsers.tools.schema import cast_text, object_member
from app.parsers.tools.stream import ToolStreamParser

OPEN, CLOSE = "<tool_call>", "</tool_call>"
FUNC, FUNC_END = "<function=", "</function>"
PARAM, PARAM_END = "<parameter=", "</parameter>"
_VALUE_ENDS = (PARAM_END, PARAM, FUNC_END, CLOSE)


class Qwen3CoderToolParser(ToolStreamParser):
    name = "qwen3_coder"
    markers = (OPEN, CLOSE, FUNC, FUNC_END, PARAM, PARAM_END)

    def __init__(self, tools: list[dict[str, Any]] | None = None) -> None:
        super().__init__(tools)
        self._index = -1
        self._func = ""
        self._params = 0
        self._param = ""
        self._scanned = 0  # how much of a parameter value was searched for its end already

    def _s_text(self) -> bool:
        before, marker, self._buf = split_at_marker(self._buf, (OPEN, CLOSE, FUNC), self._final)
        self._content(before)
        if marker == OPEN:
            self._begin_raw(OPEN)
            self._state = "call"
        elif marker == FUNC:
            self._begin_raw(FUNC)
            self._state = "name"
        return marker is not None  # a stray closing tag is dropped

    def _s_call(self) -> bool:
        if not self._skip_ws():
            return False
        found = self._expect(FUNC)
        if found is None:
            return False
        if not found:
            self._state = "bad"
            return True
        self._take(len(FUNC))
        self._state = "name"
        return True

    def _s_name(self) -> bool:
        end = self._buf.find(">")
        if end < 0:
            return False
        name = self._take(end + 1)[:-1].strip()
        if not name or "<" in name:
            self._state = "bad"
            return True
        self._func, self._params = name, 0
        self._index = self._start_call(name)
        self._state = "params"
        return True

    def _s_params(self) -> bool:
        if not self._skip_ws():
            return False
        for tag, state in ((PARAM, "param"), (FUNC_END, "end"), (CLOSE, "text")):
            found = self._expect(tag)
            if found is None:
                return False
            if found:
                self._take(len(tag))
                if state != "param":
                    self._close_args()
                self._state = state
                return True
        # Stray text between parameters: skip to the next tag.
        nxt = self._buf.find("<", 1)
        self._take(nxt if nxt > 0 else len(self._buf))
        return True

    def _s_param(self) -> bool:
        end = self._buf.find(">")
        if end < 0:
            return False
        self._param = self._take(end + 1)[:-1].strip()
        self._scanned = 0
        self._state = "value"
        return True

    def _s_value(self) -> bool:
        found = find_marker(self._buf, _VALUE_ENDS, self._scanned)
        if found is None:
            if not self._final:
                self._scanned = max(0, len(self._buf) - max(map(len, _VALUE_ENDS)) + 1)
                return False
            found = (len(self._buf), "")
        pos, marker = found
        value = self._take(pos)
        if marker == PARAM_END:
            self._take(len(PARAM_END))
        self._emit_param(value)
        self._state = "params"
        return True

    def _s_end(self) -> bool:
        return self._end_block(CLOSE)

    def _s_bad(self) -> bool:
        return self._skip_malformed(CLOSE, OPEN, "call")

    def _emit_param(self, raw: str) -> None:
        if raw.startswith("\n"):
            raw = raw[1:]
        if raw.endswith("\n"):
            raw = raw[:-1]
        value = cast_text(raw, self.schema_for(self._func, self._param))
        self._args(self._index, object_member(self._param, value, first=not self._params))
        self._params += 1

    def _close_args(self) -> None:
        self._args(self._index, "}" if self._params else "{}")

    def _at_end(self) -> None:
        if self._state in ("call", "name", "bad"):
            self._malformed(self._buf)
            self._buf = ""
        elif self._state in ("params", "param", "value"):
            self._buf = ""
            self._close_args()
        self._state = "text"
