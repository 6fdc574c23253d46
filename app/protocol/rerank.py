"""``POST /v1/rerank`` (Cohere's and Jina's shape, as vLLM serves it) and ``POST /v1/score`` (vLLM's shape)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from app.protocol.common import Usage, WireModel, WireRequest

MAX_DOCUMENTS = 1000


class RerankDocument(WireModel):
    text: str


class RerankRequest(WireRequest):
    model: str | None = None
    query: str
    documents: Annotated[list[str | RerankDocument], Field(min_length=1, max_length=MAX_DOCUMENTS)]
    top_n: int | None = Field(None, ge=1)
    return_documents: bool = True
    truncate_prompt_tokens: int | None = Field(None, ge=-1)  # as in /v1/embeddings


class RerankResult(WireModel):
    index: int
    relevance_score: float
    document: RerankDocument | None = None


class RerankUsage(WireModel):
    prompt_tokens: int
    total_tokens: int


class RerankResponse(WireModel):
    id: str
    model: str
    results: list[RerankResult]
    usage: RerankUsage


Texts = str | Annotated[list[str], Field(min_length=1, max_length=MAX_DOCUMENTS)]


class ScoreRequest(WireRequest):
    """``text_1`` against ``text_2``: one against one, one against many, or many against as many (pairwise)."""

    model: str | None = None
    text_1: Texts
    text_2: Texts
    truncate_prompt_tokens: int | None = Field(None, ge=-1)


class ScoreData(WireModel):
    index: int
    object: Literal["score"] = "score"
    score: float


class ScoreResponse(WireModel):
    id: str
    object: Literal["list"] = "list"
    created: int
    model: str
    data: list[ScoreData]
    usage: Usage
