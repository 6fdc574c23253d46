"""Delimiter search with hold-back, and the ordered delta collector."""

from __future__ import annotations

from app.parsers.base import ParsedDelta, ToolCallDelta
from app.parsers.scan import Emitter, find_marker, new_call_id, partial_suffix, split_at_marker
from tests.parsers.helpers import CALL_ID


def test_partial_suffix() -> None:
    assert partial_suffix("abc <to", ["<tool>"]) == 3
    assert partial_suffix("abc <tool>", ["<tool>"]) == 0
    assert partial_suffix("x<", ["<a>", "<<b"]) == 1
    assert partial_suffix("x<<", ["<a>", "<<b"]) == 2
    assert partial_suffix("", ["<a>"]) == 0


def test_find_marker_prefers_earliest_then_longest() -> None:
    assert find_marker("ab <x> <y>", ["<y>", "<x>"]) == (3, "<x>")
    assert find_marker("ab <xy>", ["<x", "<xy>"]) == (3, "<xy>")
    assert find_marker("ab", ["<x>"]) is None


def test_split_at_marker() -> None:
    assert split_at_marker("a<b>c", ["<b>"], final=False) == ("a", "<b>", "c")
    assert split_at_marker("a<b", ["<b>"], final=False) == ("a", None, "<b")
    assert split_at_marker("a<b", ["<b>"], final=True) == ("a<b", None, "")


def test_call_ids_are_unique_and_well_formed() -> None:
    ids = {new_call_id() for _ in range(200)}
    assert len(ids) == 200 and all(CALL_ID.fullmatch(i) for i in ids)


def test_emitter_merges_neighbours_of_one_kind() -> None:
    out = Emitter()
    out.content("a")
    out.content("b")
    out.reasoning("r")
    out.call_start(0, "f", "{")
    out.call_args(0, "}")
    out.call_args(1, "x")
    out.content("")
    got = out.take()
    assert got[:2] == [ParsedDelta(content="ab"), ParsedDelta(reasoning="r")]
    (first, second) = got[2].tool_calls
    assert (first.index, first.name, first.arguments) == (0, "f", "{}") and CALL_ID.fullmatch(first.id or "")
    assert second == ToolCallDelta(index=1, arguments="x")
    assert out.take() == []
