"""Parsed deltas → an Anthropic message's content blocks and its stream events.

One builder per message; streaming and non-streaming calls both run it, so the message a stream adds up
to is, by construction, the one a non-streaming call returns. One block is open at a time: reasoning
is a ``thinking`` block, content a ``text`` block, each tool call a ``tool_use`` block whose input
arrives as ``input_json_delta`` fragments. A change of kind, or a new call, closes the open block.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable

from app.parsers.base import ParsedDelta, ToolCallDelta
from app.parsers.scan import new_call_id
from app.protocol.anthropic_objects import (
    ContentBlockDeltaEvent,
    ContentBlockStartEvent,
    ContentBlockStopEvent,
    InputJsonDelta,
    Message,
    MessageDeltaEvent,
    MessageStartEvent,
    MessageStopEvent,
    MessageStreamEvent,
    MessageUsage,
    PingEvent,
    SignatureDelta,
    StopDelta,
    StopReason,
    TextContent,
    TextDelta,
    ThinkingContent,
    ThinkingDelta,
    ToolUseContent,
)


def thinking_signature(thinking: str) -> str:
    """A thinking block's ``signature``: a digest of its text (this server keeps no secret to sign with),
    so a client that requires one has one to send back."""
    return base64.b64encode(hashlib.sha256(thinking.encode()).digest()).decode()


def tool_input(arguments: str) -> dict[str, object]:
    """A call's input from its arguments' JSON; what is not a JSON object (output cut short) is empty."""
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class MessageBuilder:
    def __init__(self, message: Message) -> None:
        self.message = message
        self._open: TextContent | ThinkingContent | ToolUseContent | None = None
        self._open_call: int | None = None  # the parser's index of the open tool call
        self._arguments = ""  # the open tool call's input JSON so far

    @property
    def called(self) -> bool:
        return any(isinstance(block, ToolUseContent) for block in self.message.content)

    def start(self) -> list[MessageStreamEvent]:
        return [MessageStartEvent(message=self.message.model_copy(deep=True)), PingEvent()]

    def add(self, deltas: Iterable[ParsedDelta]) -> list[MessageStreamEvent]:
        events: list[MessageStreamEvent] = []
        for delta in deltas:
            if delta.reasoning:
                events += self._thinking(delta.reasoning)
            if delta.content:
                events += self._text(delta.content)
            for call in delta.tool_calls:
                events += self._tool_call(call)
        return events

    def finish(
        self, stop_reason: StopReason, stop_sequence: str | None, usage: MessageUsage
    ) -> list[MessageStreamEvent]:
        events = self._close()
        self.message.stop_reason, self.message.stop_sequence, self.message.usage = stop_reason, stop_sequence, usage
        delta = StopDelta(stop_reason=stop_reason, stop_sequence=stop_sequence)
        events += [MessageDeltaEvent(delta=delta, usage=usage.model_copy()), MessageStopEvent()]
        return events

    def _thinking(self, text: str) -> list[MessageStreamEvent]:
        events: list[MessageStreamEvent] = []
        if not isinstance(self._open, ThinkingContent):
            events += self._close() + self._open_block(ThinkingContent())
        assert isinstance(self._open, ThinkingContent)
        self._open.thinking += text
        events.append(ContentBlockDeltaEvent(index=self._index(), delta=ThinkingDelta(thinking=text)))
        return events

    def _text(self, text: str) -> list[MessageStreamEvent]:
        events: list[MessageStreamEvent] = []
        if not isinstance(self._open, TextContent):
            events += self._close() + self._open_block(TextContent())
        assert isinstance(self._open, TextContent)
        self._open.text += text
        events.append(ContentBlockDeltaEvent(index=self._index(), delta=TextDelta(text=text)))
        return events

    def _tool_call(self, call: ToolCallDelta) -> list[MessageStreamEvent]:
        events: list[MessageStreamEvent] = []
        if not isinstance(self._open, ToolUseContent) or self._open_call != call.index:
            events += self._close()
            events += self._open_block(ToolUseContent(id=call.id or new_call_id(), name=call.name or ""))
            self._open_call = call.index
        if call.arguments:
            self._arguments += call.arguments
            delta = InputJsonDelta(partial_json=call.arguments)
            events.append(ContentBlockDeltaEvent(index=self._index(), delta=delta))
        return events

    def _open_block(self, block: TextContent | ThinkingContent | ToolUseContent) -> list[MessageStreamEvent]:
        self.message.content.append(block)
        self._open = block
        return [ContentBlockStartEvent(index=self._index(), content_block=block.model_copy(deep=True))]

    def _close(self) -> list[MessageStreamEvent]:
        block, self._open, self._open_call = self._open, None, None
        if block is None:
            return []
        events: list[MessageStreamEvent] = []
        if isinstance(block, ThinkingContent):
            block.signature = thinking_signature(block.thinking)
            events.append(ContentBlockDeltaEvent(index=self._index(), delta=SignatureDelta(signature=block.signature)))
        elif isinstance(block, ToolUseContent):
            block.input, self._arguments = tool_input(self._arguments), ""
        events.append(ContentBlockStopEvent(index=self._index()))
        return events

    def _index(self) -> int:
        return len(self.message.content) - 1
