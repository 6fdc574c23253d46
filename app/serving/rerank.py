"""``POST /v1/rerank`` and ``POST /v1/score``: (query, document) pairs → one relevance score each from a
cross-encoder's pooling engine (sigmoid of its one logit, as sentence-transformers' CrossEncoder gives)."""

from __future__ import annotations

import time
import uuid

from app.engine.types import PairTokenizer
from app.errors import InvalidRequest
from app.models.registry import ModelRegistry
from app.protocol.common import Usage
from app.protocol.rerank import (
    RerankDocument,
    RerankRequest,
    RerankResponse,
    RerankResult,
    RerankUsage,
    ScoreData,
    ScoreRequest,
    ScoreResponse,
)
from app.serving.pooling import SCORE_TASK, Encode, Encoded, PoolingRunner


def _pairs(pairs: list[tuple[str, str]]) -> Encode:
    def encode(tokenizer: PairTokenizer, limit: int | None) -> list[Encoded]:
        return [tokenizer.encode_pair(first, second, max_length=limit) for first, second in pairs]

    return encode


def score_pairs(req: ScoreRequest) -> list[tuple[str, str]]:
    """vLLM's pairing: one against one, one against many, or many against as many (pairwise)."""
    firsts = [req.text_1] if isinstance(req.text_1, str) else req.text_1
    seconds = [req.text_2] if isinstance(req.text_2, str) else req.text_2
    if len(firsts) == 1:
        firsts = firsts * len(seconds)
    if len(firsts) != len(seconds):
        raise InvalidRequest(
            f"text_1 has {len(firsts)} texts and text_2 {len(seconds)}: give one text_1, or as many as text_2.",
            param="text_1",
        )
    return list(zip(firsts, seconds, strict=True))


class RerankService:
    def __init__(self, registry: ModelRegistry) -> None:
        self._runner = PoolingRunner(registry)

    async def rerank(self, req: RerankRequest) -> RerankResponse:
        texts = [doc if isinstance(doc, str) else doc.text for doc in req.documents]
        request_id = f"rerank-{uuid.uuid4().hex}"
        pairs = [(req.query, text) for text in texts]
        output = await self._runner.run(
            request_id, req.model, SCORE_TASK, _pairs(pairs), param="documents", truncate=req.truncate_prompt_tokens
        )
        ranked = sorted(enumerate(output.results), key=lambda item: -float(item[1].values[0]))
        results = [
            RerankResult(
                index=index,
                relevance_score=float(result.values[0]),
                document=RerankDocument(text=texts[index]) if req.return_documents else None,
            )
            for index, result in ranked[: req.top_n]
        ]
        usage = RerankUsage(prompt_tokens=output.prompt_tokens, total_tokens=output.prompt_tokens)
        return RerankResponse(id=request_id, model=output.model, results=results, usage=usage)

    async def score(self, req: ScoreRequest) -> ScoreResponse:
        request_id = f"score-{uuid.uuid4().hex}"
        output = await self._runner.run(
            request_id,
            req.model,
            SCORE_TASK,
            _pairs(score_pairs(req)),
            param="text_2",
            truncate=req.truncate_prompt_tokens,
        )
        data = [ScoreData(index=i, score=float(result.values[0])) for i, result in enumerate(output.results)]
        tokens = output.prompt_tokens
        usage = Usage(prompt_tokens=tokens, completion_tokens=0, total_tokens=tokens)
        return ScoreResponse(id=request_id, created=int(time.time()), model=output.model, data=data, usage=usage)
