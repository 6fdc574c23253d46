"""Driving a parser over every way of splitting a text, and checking the streaming contract."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from app.parsers.base import OutputParser, ParsedDelta

CALL_ID = re.compile(r"call_[0-9a-f]{24}")


@dataclass
class Outcome:
    content: str = ""
    reasoning: str = ""
    calls: list[tuple[str, str]] = field(default_factory=list)  # (name, arguments text)

    def arguments(self) -> list[object]:
        return [json.loads(args) for _, args in self.calls]


def collect(deltas: Iterable[ParsedDelta]) -> Outcome:
    """Concatenate deltas, asserting the tool-call streaming rules on the way."""
    out = Outcome()
    ids: list[str] = []
    for delta in deltas:
        out.content += delta.content
        out.reasoning += delta.reasoning
        for call in delta.tool_calls:
            if call.index == len(out.calls):
                assert call.id is not None and CALL_ID.fullmatch(call.id), call
                assert call.name, call
                ids.append(call.id)
                out.calls.append((call.name, call.arguments))
            else:
                assert call.index < len(out.calls), f"call {call.index} before its first delta"
                assert call.id is None and call.name is None, call
                name, args = out.calls[call.index]
                out.calls[call.index] = (name, args + call.arguments)
    assert len(set(ids)) == len(ids), "tool-call ids must be unique"
    return out


def run(parser: OutputParser, pieces: Iterable[str]) -> Outcome:
    deltas: list[ParsedDelta] = []
    for piece in pieces:
        deltas += parser.feed(piece)
    deltas += parser.finish()
    return collect(deltas)


def random_split(text: str, rng: random.Random, longest: int) -> list[str]:
    pieces, i = [], 0
    while i < len(text):
        size = rng.randint(1, longest)
        pieces.append(text[i : i + size])
        i += size
    return pieces


def splits(text: str, seeds: int = 30) -> list[list[str]]:
    """The whole text, char by char, and seeded random chunkings of several granularities."""
    out = [[text], list(text)]
    for seed in range(seeds):
        rng = random.Random(seed)
        out.append(random_split(text, rng, rng.choice((2, 3, 5, 8, 16))))
    return out


def parse_all_ways(make: Callable[[], OutputParser], text: str, markers: Iterable[str] = ()) -> Outcome:
    """Parse ``text`` whole and in every split; all must agree. Content never holds a marker."""
    whole = run(make(), [text])
    for pieces in splits(text):
        got = run(make(), pieces)
        assert got == whole, f"split {pieces!r} gave {got!r}, whole text gave {whole!r}"
    for marker in markers:
        assert marker not in whole.content, f"{marker!r} leaked into content {whole.content!r}"
    return whole
