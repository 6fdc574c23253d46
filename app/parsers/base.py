"""The parser contract every endpoint consumes: text pieces in, typed deltas out.

A parser is stateful and belongs to one choice (build one per choice, never share one). ``feed`` takes
each piece of decoded text as it arrives and returns what can be released so far; ``finish`` flushes
whatever was held back (a possible delimiter prefix) once generation ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class ToolCallDelta:
    """A piece of the ``index``-th tool call: ``id`` and ``name`` arrive once, first; ``arguments``
    arrive as JSON text fragments whose concatenation is the call's arguments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True)
class ParsedDelta:
    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCallDelta] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.content or self.reasoning or self.tool_calls)


class OutputParser(Protocol):
    def feed(self, text: str) -> list[ParsedDelta]: ...

    def finish(self) -> list[ParsedDelta]: ...


class PlainTextParser:
    """Everything is content: for models with neither reasoning nor tool-call syntax."""

    def feed(self, text: str) -> list[ParsedDelta]:
        return [ParsedDelta(content=text)] if text else []

    def finish(self) -> list[ParsedDelta]:
        return []
