"""Incremental detokenization and stop strings.

``TextAssembler`` turns generated token ids into text pieces that are always whole UTF-8 characters,
holds back text that might be the start of a stop string, and trims the stop string itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tokenizers.decoders import DecodeStream


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


class TextAssembler:
    """Detokenizer plus stop strings for one sequence."""

    def __init__(self, tokenizer: Any, stops: Sequence[str], skip_special_tokens: bool = True) -> None:
        self._detok = IncrementalDetokenizer(tokenizer, skip_special_tokens)
        self._stops = StopMatcher(stops)

    def add(self, token_id: int) -> tuple[str, bool]:
        return self._stops.feed(self._detok.step(token_id))

    def finish(self) -> str:
        return self._stops.flush()

    @property
    def stop_string(self) -> str | None:
        return self._stops.matched
