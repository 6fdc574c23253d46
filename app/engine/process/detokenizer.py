"""Incremental detokenization and stop strings.

``TextAssembler`` turns generated token ids into text pieces that are always whole UTF-8 characters,
holds back text that might be the start of a stop string, and trims the stop string itself. Stop strings
apply to the content the client sees: text inside the model's reasoning block (``ReasoningMarkers``) is
never matched against them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tokenizers.decoders import DecodeStream

from app.engine.types import ReasoningMarkers


class IncrementalDetokenizer:
    """Yields the text each new token completes; never a broken UTF-8 fragment."""

    def __init__(self, tokenizer: Any, skip_special_tokens: bool = True) -> None:
        self._backend = getattr(tokenizer, "_tokenizer", None)
        self._tokenizer = tokenizer
        self._skip_special = skip_special_tokens
        if self._backend is not None:
            self._stream = DecodeStream(skip_special_tokens=skip_special_tokens)
        else:  # slow tokenizers: re-decode and diff
            self._ids: list[int] = []
            self._emitted = 0

    def step(self, token_id: int) -> str:
        if self._backend is not None:
            return self._stream.step(self._backend, token_id) or ""
        self._ids.append(token_id)
        text = self._tokenizer.decode(self._ids, skip_special_tokens=self._skip_special)
        if text.endswith("\ufffd"):
            return ""
        piece, self._emitted = text[self._emitted :], len(text)
        return piece


class StopMatcher:
    """Finds stop strings across token boundaries, holding back a possible partial match."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""
        self.matched: str | None = None  # the stop string that ended the output

    def feed(self, text: str) -> tuple[str, bool]:
        """Returns the text safe to emit and whether a stop string ended the output."""
        if not self._stops:
            return text, False
        buffer = self._pending + text
        hits = [(i, stop) for stop in self._stops if (i := buffer.find(stop)) >= 0]
        if hits:
            self._pending = ""
            at, self.matched = min(hits, key=lambda hit: hit[0])
            return buffer[:at], True
        hold = self._partial_suffix(buffer)
        self._pending = buffer[len(buffer) - hold :] if hold else ""
        return buffer[: len(buffer) - hold], False

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return text

    def _partial_suffix(self, buffer: str) -> int:
        best = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), best, -1):
                if buffer.endswith(stop[:size]):
                    best = size
                    break
        return best


def _held_prefix(buffer: str, marker: str) -> int:
    """The length of the longest end of ``buffer`` that starts ``marker`` (without being all of it)."""
    for size in range(min(len(marker) - 1, len(buffer)), 0, -1):
        if buffer.endswith(marker[:size]):
            return size
    return 0


class ReasoningSplitter:
    """Splits text into reasoning and content segments, in order. A block runs from its start marker
    (or from the output's start when the prompt opened it) through its end marker. Like the reasoning
    parser, the client never sees the whitespace at the head of the content (after a block, or at the
    output's start), so that counts as the block's too. A possible partial marker at the end of the text
    is held back until the next piece."""

    def __init__(self, markers: ReasoningMarkers) -> None:
        self._start, self._end = markers.start, markers.end
        self._inside = markers.open
        self._head = True  # at the head of the content: whitespace is not content yet
        self._pending = ""

    @property
    def inside(self) -> bool:
        """Within the block (or holding back what may be its end)."""
        return self._inside

    def feed(self, text: str, *, final: bool = False) -> list[tuple[str, bool]]:
        """``(text, is_reasoning)`` segments; ``final`` releases what is held back."""
        buffer, self._pending = self._pending + text, ""
        segments: list[tuple[str, bool]] = []
        while buffer:
            if self._inside:
                at = buffer.find(self._end)
                if at < 0:
                    break
                cut = at + len(self._end)
                segments.append((buffer[:cut], True))
                buffer, self._inside, self._head = buffer[cut:], False, True
                continue
            if self._head:
                body = buffer.lstrip()
                segments.append((buffer[: len(buffer) - len(body)], True))
                buffer, self._head = body, not body
            at = buffer.find(self._start)
            if at < 0:
                break
            segments.append((buffer[:at], False))
            buffer, self._inside = buffer[at:], True
        hold = 0 if final else _held_prefix(buffer, self._end if self._inside else self._start)
        self._pending = buffer[len(buffer) - hold :] if hold else ""
        segments.append((buffer[: len(buffer) - hold], self._inside))
        return [segment for segment in segments if segment[0]]


class TextAssembler:
    """Detokenizer plus stop strings for one sequence; with ``reasoning``, stop strings skip its block, and
    the tokens inside it are counted (``reasoning_tokens``, as OpenAI reports them)."""

    def __init__(
        self,
        tokenizer: Any,
        stops: Sequence[str],
        skip_special_tokens: bool = True,
        reasoning: ReasoningMarkers | None = None,
    ) -> None:
        self._detok = IncrementalDetokenizer(tokenizer, skip_special_tokens)
        self._stops = StopMatcher(stops)
        self._split = ReasoningSplitter(reasoning) if reasoning is not None else None
        self._tokenizer, self._reasoning = tokenizer, reasoning
        self._overrun = False  # the reasoning budget was spent (its end marker was asked for)
        self._stopped = False
        self.reasoning_tokens = 0  # tokens inside the reasoning block (its markers and trailing whitespace too)

    def add(self, token_id: int) -> tuple[str, bool]:
        text = self._detok.step(token_id)
        if self._split is None:
            return self._stops.feed(text)
        segments = self._split.feed(text)
        if self._split.inside or any(reasoning for _, reasoning in segments):
            self.reasoning_tokens += 1
        return self._matched(segments)

    def finish(self) -> str:
        if self._split is None or self._stopped:
            return self._stops.flush()
        text, stopped = self._matched(self._split.feed("", final=True))
        return text if stopped else text + self._stops.flush()

    def _matched(self, segments: list[tuple[str, bool]]) -> tuple[str, bool]:
        """Content segments go through the stop strings; a reasoning segment releases held content first."""
        out: list[str] = []
        for text, reasoning in segments:
            if reasoning:
                out += (self._stops.flush(), text)
                continue
            safe, stopped = self._stops.feed(text)
            out.append(safe)
            if stopped:
                self._stopped = True
                return "".join(out), True
        return "".join(out), False

    def reasoning_overrun(self, budget: int) -> list[int]:
        """The reasoning block's end marker as token ids, once: when the output is inside the block and has spent
        ``budget`` tokens there. Else none."""
        if self._overrun or self._split is None or self._reasoning is None:
            return []
        if not self._split.inside or self.reasoning_tokens < budget:
            return []
        self._overrun = True
        return self._tokenizer.encode(self._reasoning.end, add_special_tokens=False)

    @property
    def stop_string(self) -> str | None:
        """The stop string that ended the output, if one did."""
        return self._stops.matched
