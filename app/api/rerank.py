"""POST /v1/rerank (also /rerank and /v2/rerank, as vLLM serves it) and POST /v1/score (also /score)."""

from __future__ import annotations

from litestar import Controller, Request, Response, post

from app.api.body import parse_body
from app.api.disconnect import unless_disconnected
from app.api.openapi import documented, operation_ids
from app.protocol.rerank import RerankRequest, RerankResponse, ScoreRequest, ScoreResponse
from app.serving.rerank import RerankService


class RerankController(Controller):
    path = "/"

    @post(
        ["/v1/rerank", "/rerank", "/v2/rerank"],
        status_code=200,
        operation_id=operation_ids({"/v1/rerank": "rerank", "/rerank": "rerankUnversioned", "/v2/rerank": "rerankV2"}),
        summary="Rank documents by their relevance to a query",
        opt=documented(RerankRequest, json=RerankResponse),
    )
    async def rerank(self, request: Request, rerank_service: RerankService) -> Response[bytes]:
        body = await parse_body(request, RerankRequest)
        result = await unless_disconnected(request, rerank_service.rerank(body))
        return Response(result.model_dump_json(exclude_none=True).encode(), media_type="application/json")

    @post(
        ["/v1/score", "/score"],
        status_code=200,
        operation_id=operation_ids({"/v1/score": "score", "/score": "scoreUnversioned"}),
        summary="Score text pairs",
        opt=documented(ScoreRequest, json=ScoreResponse),
    )
    async def score(self, request: Request, rerank_service: RerankService) -> Response[bytes]:
        body = await parse_body(request, ScoreRequest)
        result = await unless_disconnected(request, rerank_service.score(body))
        return Response(result.model_dump_json(exclude_none=True).encode(), media_type="application/json")
