"""Legacy Completions wire schemas (OpenAI ``/v1/completions``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from app.protocol.chat import StreamOptions
from app.protocol.common import ConstrainedRequest, Usage, WireModel

TokenIds = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]


class CompletionRequest(ConstrainedRequest):
    model: str | None = None
    prompt: str | Annotated[list[str], Field(min_length=1)] | TokenIds | Annotated[list[TokenIds], Field(min_length=1)]
    suffix: str | None = None
    max_tokens: int | None = Field(16, ge=1)  # OpenAI's default for this endpoint
    best_of: int | None = Field(None, ge=1)
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False
    stream: bool = False
    stream_options: StreamOptions | None = None


class CompletionLogprobs(WireModel):
    """The legacy format: parallel lists, one entry per token."""

    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]


class CompletionChoice(WireModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: str | None = None


class Completion(WireModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
