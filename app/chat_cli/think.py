"""Reasoning a server left in the answer's text (``<think>…</think>``), split off while it streams.

Servers that parse reasoning send it in its own field and never reach this; for the others a tag may
arrive cut across chunks, so a tail that could still become a tag is held back until the next piece.
"""

from __future__ import annotations

from app.chat_cli.client import Delta

OPEN, CLOSE = "<think>", "</think>"


class ThinkSplitter:
    def __init__(self) -> None:
        self._held = ""
        self._thinking = False
        self._after_tag = False  # the blank lines that follow a tag are the tag's, not the text's

    def feed(self, text: str) -> list[Delta]:
        """The pieces ``text`` completes: reasoning inside the tags, content outside them."""
        text = self._held + text
        self._held = ""
        pieces: list[Delta] = []
        while text:
            if self._after_tag:
                text = text.lstrip()
                self._after_tag = not text
                if not text:
                    break
            tag = CLOSE if self._thinking else OPEN
            kind = "reasoning" if self._thinking else "content"
            at = text.find(tag)
            if at >= 0:
                if at:
                    pieces.append(Delta(kind, text[:at]))
                text = text[at + len(tag) :]
                self._thinking = not self._thinking
                self._after_tag = True
                continue
            keep = _partial_tag_length(text, tag)
            if len(text) > keep:
                pieces.append(Delta(kind, text[: len(text) - keep]))
            self._held = text[len(text) - keep :] if keep else ""
            break
        return pieces

    def finish(self) -> list[Delta]:
        """What was held back: the stream ended, so it was text after all."""
        held, self._held = self._held, ""
        return [Delta("reasoning" if self._thinking else "content", held)] if held else []


def _partial_tag_length(text: str, tag: str) -> int:
    """How long a tail of ``text`` is a beginning of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
