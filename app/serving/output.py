"""How a request's output is parsed: which reasoning and tool-call parsers, one instance per choice,
and how their deltas become chat messages, chat chunks and tool-call lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.engine.types import ModelInfo, ReasoningMarkers
from app.errors import InvalidRequest
from app.parsers.base import OutputParser, ParsedDelta, PlainTextParser, ToolCallDelta
from app.parsers.choice import ChoiceParser
from app.parsers.reasoning import ReasoningFormat
from app.parsers.registry import select_reasoning_parser, select_tool_parser
from app.parsers.traits import ModelTraits


class FirstCallOnly:
    """``parallel_tool_calls: false``: a second call and anything after it are dropped."""

    def __init__(self, parser: OutputParser) -> None:
        self._parser = parser

    def feed(self, text: str) -> list[ParsedDelta]:
        return self._keep(self._parser.feed(text))

    def finish(self) -> list[ParsedDelta]:
        return self._keep(self._parser.finish())

    @staticmethod
    def _keep(deltas: list[ParsedDelta]) -> list[ParsedDelta]:
        for delta in deltas:
            delta.tool_calls = [call for call in delta.tool_calls if call.index == 0]
        return deltas


@dataclass(frozen=True, slots=True)
class OutputPlan:
    """Built once per request from the model and the request; ``parser()`` makes one per choice."""

    tool_factory: Callable[..., Any] | None = None
    tools: tuple[dict[str, Any], ...] = ()
    reasoning_factory: ReasoningFormat | None = None
    inside_reasoning: bool = False
    single_call: bool = False
    tool_parser_name: str | None = None
    keep_special_tokens: bool = False

    def parser(self) -> OutputParser:
        if self.tool_factory is None and self.reasoning_factory is None:
            return PlainTextParser()
        reasoning = self.reasoning_factory(inside=self.inside_reasoning) if self.reasoning_factory else None
        tools = self.tool_factory(list(self.tools)) if self.tool_factory else None
        parser: OutputParser = ChoiceParser(reasoning, tools)
        return FirstCallOnly(parser) if self.single_call else parser

    def reasoning_markers(self) -> ReasoningMarkers | None:
        """Where the output's reasoning is, for the engine (its stop strings skip it)."""
        if self.reasoning_factory is None:
            return None
        fmt = self.reasoning_factory
        return ReasoningMarkers(fmt.start, fmt.end, open=self.inside_reasoning)


def check_tool_parser(name: str | None) -> str | None:
    """``--tool-call-parser``: an unknown name stops start-up with the known ones listed."""
    if name:
        select_tool_parser(ModelTraits(model_type="", tokens=frozenset(), chat_template=""), name)
    return name


def traits_of(info: ModelInfo) -> ModelTraits:
    return ModelTraits(
        model_type=info.model_type, tokens=frozenset(info.added_tokens), chat_template=info.chat_template
    )


def plan_output(
    info: ModelInfo,
    *,
    tools: list[dict[str, Any]] | None,
    tool_parser: str | None,
    parallel_tool_calls: bool,
    prompt_tail: str,
) -> OutputPlan:
    """``tools``: what the template was given (none when ``tool_choice`` is ``none``); ``prompt_tail``:
    the end of the rendered prompt, to see whether the template opened a reasoning block."""
    traits = traits_of(info)
    try:
        tool_factory = select_tool_parser(traits, tool_parser) if tools else None
    except ValueError as exc:  # an unknown --tool-call-parser is refused at start-up; this is a guard
        raise InvalidRequest(str(exc), param="tools") from exc
    reasoning = select_reasoning_parser(traits)
    inside = reasoning is not None and reasoning.opened_by(prompt_tail)
    # Delimiters that are special tokens vanish from decoded text unless special tokens are kept (Mistral's
    # [TOOL_CALLS], Llama's <|python_tag|>, Gemma 4's tool-call and channel tokens); added tokens that are
    # not special (Qwen's <tool_call>, <think>) are decoded either way.
    markers = [*getattr(tool_factory, "markers", ()), *(reasoning.markers if reasoning else ())]
    return OutputPlan(
        tool_factory=tool_factory,
        tools=tuple(tools or ()),
        reasoning_factory=reasoning,
        inside_reasoning=inside,
        single_call=not parallel_tool_calls,
        tool_parser_name=getattr(tool_factory, "name", None),
        keep_special_tokens=any(marker in info.special_tokens for marker in markers),
    )


def merge(deltas: list[ParsedDelta]) -> ParsedDelta:
    merged = ParsedDelta()
    for delta in deltas:
        merged.content += delta.content
        merged.reasoning += delta.reasoning
        merged.tool_calls.extend(delta.tool_calls)
    return merged


def chunk_tool_calls(calls: list[ToolCallDelta]) -> list[dict[str, Any]] | None:
    """Chat stream form: id, type and name with a call's first delta, then argument fragments."""
    if not calls:
        return None
    wire = []
    for call in calls:
        item: dict[str, Any] = {"index": call.index, "function": {"arguments": call.arguments}}
        if call.id is not None:
            item["id"], item["type"] = call.id, "function"
            item["function"]["name"] = call.name or ""
        wire.append(item)
    return wire


@dataclass(slots=True)
class ChoiceOutput:
    """One choice's output so far, assembled from its deltas."""

    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    length: int = 0  # characters of content so far

    def add(self, deltas: list[ParsedDelta]) -> None:
        for delta in deltas:
            self.content.append(delta.content)
            self.length += len(delta.content)
            self.reasoning.append(delta.reasoning)
            for call in delta.tool_calls:
                entry = self.calls.setdefault(
                    call.index, {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
                )
                entry["function"]["arguments"] += call.arguments

    def tool_calls(self) -> list[dict[str, Any]] | None:
        return [self.calls[i] for i in sorted(self.calls)] or None

    def text(self) -> str | None:
        text = "".join(self.content)
        return None if not text and self.calls else text

    def reasoning_text(self) -> str | None:
        return "".join(self.reasoning) or None


def finish_reason(reason: str, called: bool) -> str:
    """A choice that ended on its own after calling a tool finishes with ``tool_calls``."""
    return "tool_calls" if called and reason == "stop" else reason
