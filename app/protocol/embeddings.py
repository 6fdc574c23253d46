"""``POST /v1/embeddings`` wire schemas (OpenAI's shape, plus vLLM's ``truncate_prompt_tokens``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from app.protocol.common import WireModel, WireRequest

MAX_INPUTS = 2048  # OpenAI's limit on inputs per request
TokenIds = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]


class EmbeddingRequest(WireRequest):
    model: str | None = None
    # One text, many texts, one token array, or many token arrays.
    input: (
        str
        | TokenIds
        | Annotated[list[TokenIds], Field(min_length=1, max_length=MAX_INPUTS)]
        | Annotated[list[str], Field(min_length=1, max_length=MAX_INPUTS)]
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None
    # -1: cut every input to the model's maximum length; k: to its first k tokens. Unset: too long is a 400.
    truncate_prompt_tokens: int | None = Field(None, ge=-1)


class Embedding(WireModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str  # base64: the little-endian float32 bytes


class EmbeddingUsage(WireModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(WireModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
