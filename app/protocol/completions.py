"""Legacy Completions wire schemas (OpenAI ``/v1/completions``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from app.protocol.chat import StreamOptions
from app.protocol.common import ConstrainedRequest, PromptLogprobs, Usage, WireModel

TokenIds = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]


class CompletionRequest(ConstrainedRequest):
    model: str | None = None
    prompt: str | Annotated[list[str], Field(min_length=1)] | TokenIds | Annotated[list[TokenIds], Field(min_length=1)]
    suffix: str | None = None
    # OpenAI's default for this endpoint; 0 (with echo or prompt_logprobs) scores the prompt, generating nothing
    max_tokens: int | None = Field(16, ge=0)
    best_of: int | None = Field(None, ge=1)
    logprobs: int | None = Field(None, ge=0, le=20)
    prompt_logprobs: int | None = Field(None, ge=0, le=20)  # vLLM's: see ``PromptLogprobs``
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
    prompt_logprobs: PromptLogprobs | None = None


class Completion(WireModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
