"""One choice's full output parsing: reasoning split first, then tool calls in the content."""

from __future__ import annotations

from app.parsers.base import OutputParser, ParsedDelta
from app.parsers.scan import Emitter
from app.parsers.tools import ToolParser


class ChoiceParser:
    """Feeds the text through the reasoning parser; its content goes on to the tool parser while the
    reasoning passes untouched. Either stage may be absent; without both this is plain text."""

    def __init__(self, reasoning: OutputParser | None = None, tools: ToolParser | None = None) -> None:
        self._reasoning = reasoning
        self._tools = tools

    def feed(self, text: str) -> list[ParsedDelta]:
        out = Emitter()
        if self._reasoning is None:
            self._content(text, out)
        else:
            self._route(self._reasoning.feed(text), out)
        return out.take()

    def finish(self) -> list[ParsedDelta]:
        out = Emitter()
        if self._reasoning is not None:
            self._route(self._reasoning.finish(), out)
        if self._tools is not None:
            out.extend(self._tools.finish())
        return out.take()

    def _route(self, deltas: list[ParsedDelta], out: Emitter) -> None:
        for delta in deltas:
            out.reasoning(delta.reasoning)
            self._content(delta.content, out)
            out.extend([ParsedDelta(tool_calls=delta.tool_calls)] if delta.tool_calls else [])

    def _content(self, text: str, out: Emitter) -> None:
        if not text:
            return
        if self._tools is None:
            out.content(text)
        else:
            out.extend(self._tools.feed(text))
