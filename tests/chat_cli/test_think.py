"""Reasoning left in the text as <think>…</think> is split off, even when a tag is cut across chunks."""

from __future__ import annotations

import pytest

from app.chat_cli.client import Delta
from app.chat_cli.think import ThinkSplitter

TEXT = "<think>\nweighing it\n</think>\n\nParis."


def _joined(pieces: list[Delta]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for piece in pieces:
        joined[piece.kind] = joined.get(piece.kind, "") + piece.text
    return joined


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, len(TEXT)])
def test_tags_cut_anywhere_split_the_same(size: int) -> None:
    splitter = ThinkSplitter()
    pieces = [piece for i in range(0, len(TEXT), size) for piece in splitter.feed(TEXT[i : i + size])]
    pieces += splitter.finish()
    assert _joined(pieces) == {"reasoning": "weighing it\n", "content": "Paris."}
    assert [p.kind for p in pieces if p.text.strip()][-1] == "content"


def test_text_that_only_looks_like_a_tag_at_the_end_is_kept() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("a < b and x <th") == [Delta("content", "a < b and x ")]
    assert splitter.finish() == [Delta("content", "<th")]


def test_text_without_tags_passes_straight_through() -> None:
    assert ThinkSplitter().feed("Hello there.") == [Delta("content", "Hello there.")]
