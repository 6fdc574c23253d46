"""The tool-parser skeleton's shared rules, through a minimal format written on it: ``<call>name(args)</call>``.

Whitespace before a call (and between calls) is not content, content after a call starts without its
whitespace, a malformed call comes back verbatim, and every split of the text parses the same."""

from __future__ import annotations

from typing import Any

import pytest

from app.parsers.scan import split_at_marker
from app.parsers.tools.stream import ToolStreamParser
from tests.parsers.helpers import Outcome, parse_all_ways

OPEN, CLOSE = "<call>", "</call>"


class ParenParser(ToolStreamParser):
    """``<call>name(args)</call>``: a name that is an identifier, arguments up to the first ``)``."""

    name = "paren"
    markers = (OPEN, CLOSE)

    def _s_text(self) -> bool:
        before, marker, self._buf = split_at_marker(self._buf, self.markers, self._final)
        self._content(before)
        if marker == OPEN:
            self._begin_raw(OPEN)
            self._state = "name"
        return marker is not None

    def _up_to(self, end: str) -> str | None:
        """The text before ``end`` (taken with it), or None: wait, or go to ``bad`` at the end."""
        found = self._buf.find(end)
        if found < 0:
            if self._final:
                self._state = "bad"
            return None
        return self._take(found + 1)[:-1]

    def _s_name(self) -> bool:
        name = self._up_to("(")
        if name is None:
            return self._state == "bad"
        self._name, self._state = name, ("args" if name.isidentifier() else "bad")
        return True

    def _s_args(self) -> bool:
        args = self._up_to(")")
        if args is None:
            return self._state == "bad"
        self._start_call(self._name, args)
        self._state = "end"
        return True

    def _s_end(self) -> bool:
        return self._end_block(CLOSE)

    def _s_bad(self) -> bool:
        return self._skip_malformed(CLOSE, OPEN, "name")

    def _at_end(self) -> None:
        if self._state in ("bad", "name", "args"):
            self._malformed(self._buf)
            self._buf = ""


def parse(text: str, markers: tuple[str, ...] = ()) -> Outcome:
    return parse_all_ways(ParenParser, text, markers)


def test_whitespace_around_a_call_is_not_content() -> None:
    out = parse("Let me look.  \n<call>f(1)</call>\n\n  Done.", markers=(OPEN, CLOSE))
    assert out.content == "Let me look.Done."
    assert out.calls == [("f", "1")]


def test_whitespace_between_calls_and_after_the_last_is_dropped() -> None:
    out = parse("<call>f(1)</call>\n <call>g()</call>\n", markers=(OPEN, CLOSE))
    assert (out.content, out.calls) == ("", [("f", "1"), ("g", "")])


def test_a_missing_closing_marker_ends_the_call_at_the_next_text() -> None:
    out = parse("<call>f(1) and then some")
    assert (out.content, out.calls) == ("and then some", [("f", "1")])


@pytest.mark.parametrize(
    "text",
    ["Before <call>9x(1)</call> after", "x <call>f(1", "<call>no parenthesis", "a <call>-(", "tail <call"],
)
def test_malformed_calls_come_back_verbatim(text: str) -> None:
    out = parse(text)
    assert (out.content, out.calls) == (text, [])


def test_a_new_call_after_a_malformed_one_is_read() -> None:
    out = parse("<call>9x(<call>f(2)</call>")
    assert (out.content, out.calls) == ("<call>9x(", [("f", "2")])


def test_text_without_calls_keeps_its_whitespace() -> None:
    assert parse("  plain text \n").content == "  plain text \n"
    assert parse(" \n").content == " \n"


def test_a_stray_closing_marker_is_dropped() -> None:
    assert parse("one</call> two").content == "one two"


TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": "chat_form", "parameters": {"properties": {"q": {"type": "string"}}}}},
    {"type": "function", "name": "flat_form", "parameters": {"type": "object"}},
    {"type": "function", "function": {"name": "no_params"}},
]


def test_schema_for_reads_both_tool_forms() -> None:
    parser = ParenParser(TOOLS)
    assert parser.schema_for("chat_form", "q") == {"type": "string"}
    assert parser.schema_for("chat_form", "missing") is None
    assert parser.schema_for("flat_form") == {"type": "object"}
    assert parser.schema_for("flat_form", "q") is None  # no properties
    assert parser.schema_for("no_params") == {}
    assert parser.schema_for("unknown", "q") is None
