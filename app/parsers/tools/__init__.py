"""Tool-call parsers, one module per output format, and the interface they share.

A tool parser class is its own factory: ``ParserClass(tools)`` builds the parser for one choice, and
the class carries ``name`` (what ``--tool-call-parser`` selects) and ``markers`` (its delimiter
strings, which the detokenizer must keep even when they are special tokens).
"""

from __future__ import annotations

from typing import Any, Protocol

from app.parsers.base import ParsedDelta


class ToolParser(Protocol):
    """A tool-call parser for one choice: content in, content and tool-call deltas out."""

    def feed(self, text: str) -> list[ParsedDelta]: ...

    def finish(self) -> list[ParsedDelta]: ...


class ToolParserFactory(Protocol):
    """A tool parser class: ``name``, ``markers`` and a constructor taking the request's tools."""

    name: str
    markers: tuple[str, ...]

    def __call__(self, tools: list[dict[str, Any]]) -> ToolParser: ...
