"""Which parsers a model gets: named registrations with detection over :class:`ModelTraits`.

One registry type serves both kinds. Detection tries registrations in order and takes the first
match, so the more specific formats are registered first (Qwen3-Coder's XML before Hermes, whose
``<tool_call>`` tag it shares; Hermes before Llama 3 for Hermes fine-tunes of Llama).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from app.parsers.reasoning import GEMMA4, THINK, ReasoningFormat
from app.parsers.tools import ToolParserFactory
from app.parsers.tools.gemma4 import Gemma4ToolParser
from app.parsers.tools.hermes import HermesToolParser
from app.parsers.tools.llama3 import PYTHON_TAG, Llama3JsonToolParser
from app.parsers.tools.mistral import TOOL_CALLS, MistralToolParser
from app.parsers.tools.qwen3_coder import Qwen3CoderToolParser
from app.parsers.traits import ModelTraits

T = TypeVar("T")
Detector = Callable[[ModelTraits], bool]


@dataclass(frozen=True, slots=True)
class Registration(Generic[T]):
    name: str
    factory: T
    detect: Detector
    aliases: tuple[str, ...] = ()


class ParserRegistry(Generic[T]):
    """Parsers of one kind by name, each with a predicate telling whether a model uses it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: list[Registration[T]] = []

    def register(self, name: str, factory: T, detect: Detector, *, aliases: tuple[str, ...] = ()) -> None:
        taken = {n for entry in self._entries for n in (entry.name, *entry.aliases)}
        clash = taken & {name, *aliases}
        if clash:
            raise ValueError(f"{self.kind} name already registered: {', '.join(sorted(clash))}")
        self._entries.append(Registration(name, factory, detect, aliases))

    def names(self) -> tuple[str, ...]:
        return tuple(entry.name for entry in self._entries)

    def get(self, name: str) -> T:
        for entry in self._entries:
            if name == entry.name or name in entry.aliases:
                return entry.factory
        raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")

    def detect(self, traits: ModelTraits) -> T | None:
        for entry in self._entries:
            if entry.detect(traits):
                return entry.factory
        return None


TOOL_PARSERS: ParserRegistry[ToolParserFactory] = ParserRegistry("tool-call parser")
REASONING_PARSERS: ParserRegistry[ReasoningFormat] = ParserRegistry("reasoning parser")


def _has_any(traits: ModelTraits, *markers: str) -> bool:
    return any(marker in traits.tokens for marker in markers)


TOOL_PARSERS.register(
    Qwen3CoderToolParser.name, Qwen3CoderToolParser, lambda t: "<function=" in t.chat_template, aliases=("qwen3_xml",)
)
TOOL_PARSERS.register(
    HermesToolParser.name,
    HermesToolParser,
    lambda t: _has_any(t, "<tool_call>") or "<tool_call>" in t.chat_template,
)
TOOL_PARSERS.register(MistralToolParser.name, MistralToolParser, lambda t: _has_any(t, TOOL_CALLS))
TOOL_PARSERS.register(
    Llama3JsonToolParser.name,
    Llama3JsonToolParser,
    lambda t: t.model_type.startswith("llama") and (_has_any(t, PYTHON_TAG) or '"parameters"' in t.chat_template),
    aliases=("llama3",),
)
TOOL_PARSERS.register(
    Gemma4ToolParser.name,
    Gemma4ToolParser,
    lambda t: t.model_type.startswith("gemma4") or _has_any(t, *Gemma4ToolParser.markers[:2]),
)

REASONING_PARSERS.register(
    THINK.name,
    THINK,
    lambda t: THINK.start in t.tokens and THINK.end in t.tokens,
    aliases=("qwen3", "deepseek_r1"),
)
REASONING_PARSERS.register(
    GEMMA4.name,
    GEMMA4,
    lambda t: t.model_type.startswith("gemma4") or (GEMMA4.start in t.tokens and GEMMA4.end in t.tokens),
)


def select_tool_parser(traits: ModelTraits, override: str | None = None) -> ToolParserFactory | None:
    """The tool parser named by ``override`` (``--tool-call-parser``; ValueError when unknown), else the
    one the model's traits point to, else None."""
    if override:
        return TOOL_PARSERS.get(override)
    return TOOL_PARSERS.detect(traits)


def select_reasoning_parser(traits: ModelTraits) -> ReasoningFormat | None:
    """The reasoning format (start/end delimiters; call it to build a parser) for a model, or None."""
    return REASONING_PARSERS.detect(traits)
