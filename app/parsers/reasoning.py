"""Reasoning separation: text between a start and an end delimiter is reasoning, the rest content.

Two delimiter families are known:

* ``<think>`` ... ``</think>`` (Qwen3, QwQ, DeepSeek-R1 and their derivatives). Qwen emits
  ``<think>\\n...\\n</think>\\n\\n answer``; templates of "thinking-only" models put the start
  delimiter at the end of the prompt, so the output begins inside the reasoning (``inside=True``).
* Gemma 4 channels: ``<|channel>thought\\n`` ... ``<channel|>``. The word ``thought`` is the channel
  name, not reasoning. Sources: the Gemma 4 chat template shipped with the checkpoints (it renders past
  reasoning as ``'<|channel>thought\\n' + reasoning + '\\n<channel|>'`` and, with thinking off, appends
  an empty ``<|channel>thought\\n<channel|>`` to the generation prompt), and vLLM's
  ``vllm/reasoning/gemma4_reasoning_parser.py``, which splits on ``<|channel>``/``<channel|>`` and strips
  the ``thought\\n`` label.

An end delimiter with no start before it, in content, is content: the text before it has already been
streamed as content, so it cannot be reasoning after the fact (a prompt that opens the block is
recognised up front: ``inside=True``).

Whitespace rules: whitespace-only text before the start delimiter is dropped, reasoning and the content
after the end delimiter lose their leading whitespace, and whitespace right before the end delimiter
is not reasoning (it is held back until more reasoning shows it was inner whitespace).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.parsers.base import ParsedDelta
from app.parsers.scan import Emitter, split_at_marker

_KEEP, _DROP = "keep", "drop"


class ReasoningParser:
    """Splits one choice's text into reasoning and content (see the module docstring)."""

    def __init__(self, start: str = "<think>", end: str = "</think>", *, inside: bool = False, label: str = "") -> None:
        if not start or not end:
            raise ValueError("reasoning delimiters must not be empty")
        self.start, self.end, self.label = start, end, label
        self._buf = ""
        self._in_reasoning = inside
        self._opening = inside  # at the head of a reasoning block: whitespace, a repeated start, the label
        self._label_seen = False
        self._pending_ws = ""  # trailing reasoning whitespace, held back
        self._lead: str | None = _KEEP  # content's leading-whitespace policy until content flows
        self._lead_ws = ""
        self._out = Emitter()

    def feed(self, text: str) -> list[ParsedDelta]:
        self._buf += text
        self._run(final=False)
        return self._out.take()

    def finish(self) -> list[ParsedDelta]:
        self._run(final=True)
        if self._lead == _KEEP:
            self._out.content(self._lead_ws)
        self._lead_ws = ""
        return self._out.take()

    def _run(self, final: bool) -> None:
        while self._reasoning_step(final) if self._in_reasoning else self._content_step(final):
            pass

    def _content_step(self, final: bool) -> bool:
        before, marker, self._buf = split_at_marker(self._buf, (self.start, self.end), final)
        self._emit_content(before)
        if marker is None:
            return False
        if marker == self.start:
            self._lead_ws = ""
            self._in_reasoning = self._opening = True
            self._label_seen = False
        else:  # an end delimiter with no block open is the model's text: kept, never dropped
            self._emit_content(marker)
        return True

    def _emit_content(self, text: str) -> None:
        if self._lead is None:
            self._out.content(text)
            return
        body = text.lstrip()
        if not body:
            if self._lead == _KEEP:
                self._lead_ws += text
            return
        self._out.content(self._lead_ws + text if self._lead == _KEEP else body)
        self._lead, self._lead_ws = None, ""

    def _reasoning_step(self, final: bool) -> bool:
        if self._opening and not self._open(final):
            return False
        before, marker, self._buf = split_at_marker(self._buf, (self.end,), final)
        self._emit_reasoning(before, closing=marker is not None or final)
        if marker is None:
            return False
        self._in_reasoning = False
        self._lead, self._lead_ws = _DROP, ""
        return True

    def _open(self, final: bool) -> bool:
        """Consume the head of a reasoning block; False while it is still ambiguous."""
        while True:
            self._buf = self._buf.lstrip()
            if self._buf.startswith(self.start):
                self._buf = self._buf[len(self.start) :]
                continue
            if self.label and not self._label_seen and self._buf.startswith(self.label):
                self._buf = self._buf[len(self.label) :]
                self._label_seen = True
                continue
            break
        heads = [self.start] + ([self.label] if self.label and not self._label_seen else [])
        if not final and (not self._buf or any(head.startswith(self._buf) for head in heads)):
            return False
        self._opening = False
        return True

    def _emit_reasoning(self, text: str, *, closing: bool) -> None:
        text = self._pending_ws + text
        body = text.rstrip()
        self._pending_ws = "" if closing else text[len(body) :]
        self._out.reasoning(body)


@dataclass(frozen=True, slots=True)
class ReasoningFormat:
    """A reasoning delimiter family; calling it builds a parser for one choice."""

    name: str
    start: str
    end: str
    label: str = ""

    @property
    def markers(self) -> tuple[str, str]:
        return (self.start, self.end)

    def __call__(self, *, inside: bool = False) -> ReasoningParser:
        return ReasoningParser(self.start, self.end, inside=inside, label=self.label)

    def opened_by(self, prompt: str) -> bool:
        """Whether a rendered prompt ends inside a reasoning block (so pass ``inside=True``)."""
        return prompt.rstrip().endswith((self.start + self.label).rstrip())


THINK = ReasoningFormat("think", "<think>", "</think>")
GEMMA4 = ReasoningFormat("gemma4", "<|channel>", "<channel|>", label="thought\n")
