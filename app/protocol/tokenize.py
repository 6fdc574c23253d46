"""``/tokenize`` and ``/detokenize`` wire schemas, in vLLM's shapes."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, Strict

from app.protocol.chat import ChatMessage
from app.protocol.common import WireModel, WireRequest


class TokenizeRequest(WireRequest):
    """Either ``prompt`` (a plain text) or ``messages`` (rendered with the model's chat template).

    ``add_special_tokens`` defaults to true for a prompt and to false for messages (the template writes
    them); ``add_generation_prompt`` defaults to true unless ``continue_final_message`` is set."""

    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = Field(None, min_length=1)
    add_special_tokens: bool | None = None
    add_generation_prompt: bool | None = None
    continue_final_message: bool = False
    tools: list[dict[str, Any]] | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    return_token_strs: bool = False


class TokenizeResponse(WireModel):
    count: int
    max_model_len: int
    tokens: list[int]
    token_strs: list[str] | None = None  # with ``return_token_strs``


class DetokenizeRequest(WireRequest):
    model: str | None = None
    tokens: list[Annotated[int, Strict()]]


class DetokenizeResponse(WireModel):
    prompt: str
