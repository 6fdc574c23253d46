"""Building blocks shared by the streaming parsers: delimiter search with hold-back, call ids and
an ordered collector of output deltas."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from app.parsers.base import ParsedDelta, ToolCallDelta


def new_call_id() -> str:
    """A fresh tool-call id: ``call_`` followed by 24 hex characters."""
    return "call_" + secrets.token_hex(12)


def partial_suffix(text: str, markers: Iterable[str]) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of one of ``markers``."""
    best, end = 0, len(text)
    for marker in markers:
        # Candidates start where the marker's first character occurs within its reach of the end.
        pos = text.find(marker[0], max(0, end - len(marker) + 1))
        while pos >= 0 and end - pos > best:
            if marker.startswith(text[pos:]):
                best = end - pos
                break
            pos = text.find(marker[0], pos + 1)
    return best


def find_marker(text: str, markers: Iterable[str], start: int = 0) -> tuple[int, str] | None:
    """The earliest occurrence of any marker at or after ``start`` (the longest one on a tie)."""
    found: tuple[int, str] | None = None
    for marker in markers:
        pos = text.find(marker, start)
        if pos >= 0 and (found is None or pos < found[0] or (pos == found[0] and len(marker) > len(found[1]))):
            found = (pos, marker)
    return found


def split_at_marker(text: str, markers: Iterable[str], final: bool) -> tuple[str, str | None, str]:
    """Split ``text`` into ``(before, marker, after)`` at the first marker.

    Without a marker, ``before`` is what can be released now and ``after`` the tail that might still
    become a marker (held back unless ``final``); ``marker`` is then ``None``."""
    markers = tuple(markers)
    found = find_marker(text, markers)
    if found is not None:
        pos, marker = found
        return text[:pos], marker, text[pos + len(marker) :]
    hold = 0 if final else partial_suffix(text, markers)
    return text[: len(text) - hold], None, text[len(text) - hold :]


class Emitter:
    """Collects output in order, merging neighbours of the same kind into one delta."""

    def __init__(self) -> None:
        self._out: list[ParsedDelta] = []

    def content(self, text: str) -> None:
        if not text:
            return
        last = self._out[-1] if self._out else None
        if last is not None and not last.tool_calls and not last.reasoning:
            last.content += text
        else:
            self._out.append(ParsedDelta(content=text))

    def reasoning(self, text: str) -> None:
        if not text:
            return
        last = self._out[-1] if self._out else None
        if last is not None and not last.tool_calls and not last.content:
            last.reasoning += text
        else:
            self._out.append(ParsedDelta(reasoning=text))

    def call_start(self, index: int, name: str, arguments: str = "") -> None:
        call = ToolCallDelta(index=index, id=new_call_id(), name=name, arguments=arguments)
        last = self._out[-1] if self._out else None
        if last is not None and last.tool_calls:
            last.tool_calls.append(call)
        else:
            self._out.append(ParsedDelta(tool_calls=[call]))

    def call_args(self, index: int, text: str) -> None:
        if not text:
            return
        last = self._out[-1] if self._out else None
        if last is not None and last.tool_calls:
            if last.tool_calls[-1].index == index:
                last.tool_calls[-1].arguments += text
            else:
                last.tool_calls.append(ToolCallDelta(index=index, arguments=text))
        else:
            self._out.append(ParsedDelta(tool_calls=[ToolCallDelta(index=index, arguments=text)]))

    def extend(self, deltas: Iterable[ParsedDelta]) -> None:
        """Re-emit deltas produced by another parser (keeps their ids)."""
        for delta in deltas:
            self.reasoning(delta.reasoning)
            self.content(delta.content)
            for call in delta.tool_calls:
                if call.id is None:
                    self.call_args(call.index, call.arguments)
                    continue
                last = self._out[-1] if self._out else None
                if last is not None and last.tool_calls:
                    last.tool_calls.append(call)
                else:
                    self._out.append(ParsedDelta(tool_calls=[call]))

    def take(self) -> list[ParsedDelta]:
        out, self._out = self._out, []
        return out
