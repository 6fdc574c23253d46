"""Responses API request schemas (OpenAI ``/v1/responses``): the request and its ``input`` items."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from app.protocol.common import SamplingRequest
from app.protocol.tools import JsonArguments, ResponsesTool, ToolChoice


class _Item(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class InputContentPart(_Item):
    """``input_text`` / ``output_text`` / ``refusal`` carry text; ``input_image``, ``input_audio``,
    ``input_file`` carry media."""

    type: str
    text: str | None = None
    refusal: str | None = None


class MessageItem(_Item):
    type: Literal["message"] = "message"
    id: str | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[InputContentPart]


class FunctionCallItem(_Item):
    type: Literal["function_call"]
    id: str | None = None
    call_id: str
    name: str
    arguments: JsonArguments


class FunctionCallOutputItem(_Item):
    type: Literal["function_call_output"]
    id: str | None = None
    call_id: str
    output: str | list[InputContentPart]


class ReasoningText(_Item):
    type: str
    text: str


class ReasoningItem(_Item):
    type: Literal["reasoning"]
    id: str | None = None
    summary: list[ReasoningText] = Field(default_factory=list)
    content: list[ReasoningText] | None = None


class ItemReference(_Item):
    type: Literal["item_reference"]
    id: str = Field(min_length=1)  # what it refers to: an empty id refers to nothing


_ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning", "item_reference")


def _item_kind(value: Any) -> str | None:
    """The item's tag: ``item:<type>`` (not an identifier, so error locations name the item's fields)."""
    kind = value.get("type", "message") if isinstance(value, dict) else getattr(value, "type", "message")
    return f"item:{kind}" if kind in _ITEM_TYPES else None  # an EasyInputMessage has no ``type``


InputItem = Annotated[
    Annotated[MessageItem, Tag("item:message")]
    | Annotated[FunctionCallItem, Tag("item:function_call")]
    | Annotated[FunctionCallOutputItem, Tag("item:function_call_output")]
    | Annotated[ReasoningItem, Tag("item:reasoning")]
    | Annotated[ItemReference, Tag("item:item_reference")],
    Discriminator(
        _item_kind,
        custom_error_type="invalid_item",
        custom_error_message=f"Unknown input item type; expected one of {', '.join(_ITEM_TYPES)}.",
    ),
]


class TextFormat(_Item):
    type: str = "text"


class TextConfig(_Item):
    format: TextFormat = Field(default_factory=TextFormat)


class ReasoningConfig(_Item):
    effort: str | None = None
    summary: str | None = None


class ResponseRequest(SamplingRequest):
    model: str | None = None
    input: str | list[InputItem] = Field(min_length=1)
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    stream: bool = False
    store: bool = True
    previous_response_id: str | None = None
    tools: list[ResponsesTool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    include: list[str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    metadata: dict[str, str] | None = None
    background: bool | None = None
    chat_template_kwargs: dict[str, Any] | None = None
