"""What the chat prints. On a terminal: answers as they stream, reasoning dimmed and set apart, load
progress on one updating line. Through a pipe: only the answers' text on stdout, one answer per message,
no colors; notes and errors go to stderr."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

DIM, BOLD, RED, RESET = "\x1b[2m", "\x1b[1m", "\x1b[31m", "\x1b[0m"
CLEAR_LINE = "\r\x1b[2K"


def _size(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


def describe_progress(event: Mapping[str, Any]) -> str:
    """One ``/load_model`` event in words: ``weights 12/272``, ``download 1.2 MB/5.0 MB``."""
    stage = str(event.get("stage") or "loading")
    progress = event.get("progress") or {}
    current, total = progress.get("current"), progress.get("total")
    if current is None:
        return stage
    if stage == "download":
        return f"{stage} {_size(current)}/{_size(total)}" if total else f"{stage} {_size(current)}"
    return f"{stage} {current}/{total}" if total else f"{stage} {current}"


class Display:
    def __init__(self, out: TextIO, err: TextIO, *, styled: bool) -> None:
        self.out, self.err, self.styled = out, err, styled
        self._kind: str | None = None  # what the answer being printed shows now
        self._stage: str | None = None

    def _write(self, stream: TextIO, text: str) -> None:
        stream.write(text)
        stream.flush()

    def piece(self, kind: str, text: str) -> None:
        """A streamed piece of the answer: ``reasoning`` (dimmed; left out through a pipe) or ``content``."""
        if kind == "reasoning" and not self.styled:
            return
        if kind != self._kind and self.styled:
            if self._kind == "reasoning":
                self._write(self.out, f"{RESET}\n\n")
            if kind == "reasoning":
                self._write(self.out, DIM)
        self._kind = kind
        self._write(self.out, text)

    def end_answer(self, interrupted: bool = False) -> None:
        if self.styled and self._kind == "reasoning":
            self._write(self.out, RESET)
        if interrupted:
            self.note("[interrupted]" if self._kind is None else "\n[interrupted]")
        self._write(self.out, "\n\n" if self.styled else "\n")
        self._kind = None

    def note(self, text: str) -> None:
        """Command output and notices: the chat's own words, never part of an answer."""
        if self.styled:
            self._write(self.out, f"{DIM}{text}{RESET}\n")
        else:
            self._write(self.err, f"{text}\n")

    @property
    def answering(self) -> bool:
        """Whether part of an answer is on screen (its line still open)."""
        return self._kind is not None

    def error(self, text: str) -> None:
        self._write(self.err, f"{RED}error:{RESET} {text}\n" if self.styled else f"hfserve chat: {text}\n")

    def progress(self, model: str, event: Mapping[str, Any]) -> None:
        """A ``loading`` event: the updating line on a terminal, each new stage once through a pipe."""
        if self.styled:
            self._write(self.out, f"{CLEAR_LINE}{DIM}Loading {model}: {describe_progress(event)}{RESET}")
        elif event.get("stage") != self._stage:
            self._write(self.err, f"loading {model}: {event.get('stage')}\n")
        self._stage = event.get("stage")

    def loaded(self, model: str, cached: bool) -> None:
        if self.styled:
            self._write(self.out, CLEAR_LINE)
            if not cached:
                self.note(f"Loaded {model}.")
        elif not cached:
            self._write(self.err, f"loaded {model}\n")

    def prompt(self) -> str:
        """The input prompt; readline needs the color codes marked as taking no room."""
        return f"\001{BOLD}\002> \001{RESET}\002" if self.styled else "> "
