"""POST /v1/embeddings."""

from __future__ import annotations

from litestar import Controller, Request, Response, post

from app.api.body import parse_body
from app.api.disconnect import unless_disconnected
from app.api.openapi import documented
from app.protocol.embeddings import EmbeddingRequest, EmbeddingResponse
from app.serving.embeddings import EmbeddingService


class EmbeddingsController(Controller):
    path = "/v1/embeddings"

    @post(
        "",
        status_code=200,
        operation_id="createEmbedding",
        summary="Create embeddings",
        opt=documented(EmbeddingRequest, json=EmbeddingResponse),
    )
    async def create(self, request: Request, embedding_service: EmbeddingService) -> Response[bytes]:
        body = await parse_body(request, EmbeddingRequest)
        result = await unless_disconnected(request, embedding_service.create(body))
        return Response(result.model_dump_json(exclude_none=True).encode(), media_type="application/json")
