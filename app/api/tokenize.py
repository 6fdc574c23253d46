"""POST /tokenize and POST /detokenize (vLLM's routes)."""

from __future__ import annotations

from litestar import Controller, Request, Response, post

from app.api.body import parse_body
from app.api.openapi import documented
from app.protocol.tokenize import DetokenizeRequest, DetokenizeResponse, TokenizeRequest, TokenizeResponse
from app.serving.tokenize import TokenizeService


class TokenizeController(Controller):
    @post(
        "/tokenize",
        status_code=200,
        operation_id="tokenize",
        summary="Tokenize a prompt or chat messages",
        opt=documented(TokenizeRequest, json=TokenizeResponse),
    )
    async def tokenize(self, request: Request, tokenize_service: TokenizeService) -> Response[bytes]:
        result = await tokenize_service.tokenize(await parse_body(request, TokenizeRequest))
        return Response(result.model_dump_json(exclude_none=True).encode(), media_type="application/json")

    @post(
        "/detokenize",
        status_code=200,
        operation_id="detokenize",
        summary="Turn token ids back into text",
        opt=documented(DetokenizeRequest, json=DetokenizeResponse),
    )
    async def detokenize(self, request: Request, tokenize_service: TokenizeService) -> Response[bytes]:
        result = await tokenize_service.detokenize(await parse_body(request, DetokenizeRequest))
        return Response(result.model_dump_json().encode(), media_type="application/json")
