"""Anthropic Messages API response objects and stream events.

Anthropic sends ``stop_reason`` and ``stop_sequence`` as ``null`` rather than leaving them out, so those
keys are kept when everything else that is None is dropped.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from app.protocol.common import WireModel

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "model_context_window_exceeded"]


class _KeepsNulls(WireModel):
    _nullable: ClassVar[tuple[str, ...]] = ()

    # No return annotation: pydantic then documents the serialized object by its fields (with one, it would
    # document a bare ``dict``).
    @model_serializer(mode="wrap")
    def _with_nulls(self, handler: SerializerFunctionWrapHandler):
        data = handler(self)
        for name in self._nullable:
            data.setdefault(name, getattr(self, name))
        return {name: data[name] for name in type(self).model_fields if name in data}


class TextContent(WireModel):
    type: Literal["text"] = "text"
    text: str = ""


class ThinkingContent(WireModel):
    type: Literal["thinking"] = "thinking"
    thinking: str = ""
    signature: str = ""


class ToolUseContent(WireModel):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)


OutputBlock = Annotated[TextContent | ThinkingContent | ToolUseContent, Field(discriminator="type")]


class MessageUsage(WireModel):
    input_tokens: int
    output_tokens: int


class Message(_KeepsNulls):
    _nullable = ("stop_reason", "stop_sequence")
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[OutputBlock] = Field(default_factory=list)
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: MessageUsage


class CountTokensResult(WireModel):
    input_tokens: int


class AnthropicErrorDetail(WireModel):
    type: str  # invalid_request_error, authentication_error, not_found_error, overloaded_error, api_error...
    message: str


class AnthropicError(WireModel):
    """Every error body on the Messages API's routes (and a failure mid-stream), in Anthropic's shape."""

    type: Literal["error"] = "error"
    error: AnthropicErrorDetail


# Stream events


class MessageStartEvent(WireModel):
    type: Literal["message_start"] = "message_start"
    message: Message


class PingEvent(WireModel):
    type: Literal["ping"] = "ping"


class ContentBlockStartEvent(WireModel):
    type: Literal["content_block_start"] = "content_block_start"
    index: int
    content_block: OutputBlock


class TextDelta(WireModel):
    type: Literal["text_delta"] = "text_delta"
    text: str


class ThinkingDelta(WireModel):
    type: Literal["thinking_delta"] = "thinking_delta"
    thinking: str


class SignatureDelta(WireModel):
    type: Literal["signature_delta"] = "signature_delta"
    signature: str


class InputJsonDelta(WireModel):
    type: Literal["input_json_delta"] = "input_json_delta"
    partial_json: str


BlockDelta = Annotated[TextDelta | ThinkingDelta | SignatureDelta | InputJsonDelta, Field(discriminator="type")]


class ContentBlockDeltaEvent(WireModel):
    type: Literal["content_block_delta"] = "content_block_delta"
    index: int
    delta: BlockDelta


class ContentBlockStopEvent(WireModel):
    type: Literal["content_block_stop"] = "content_block_stop"
    index: int


class StopDelta(_KeepsNulls):
    _nullable = ("stop_reason", "stop_sequence")
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None


class MessageDeltaEvent(WireModel):
    type: Literal["message_delta"] = "message_delta"
    delta: StopDelta
    usage: MessageUsage


class MessageStopEvent(WireModel):
    type: Literal["message_stop"] = "message_stop"


MessageStreamEvent = (
    MessageStartEvent
    | PingEvent
    | ContentBlockStartEvent
    | ContentBlockDeltaEvent
    | ContentBlockStopEvent
    | MessageDeltaEvent
    | MessageStopEvent
)
