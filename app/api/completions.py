"""POST /v1/completions."""

from __future__ import annotations

from litestar import Controller, Request, Response, post
from litestar.response import Stream

from app.api.body import parse_body
from app.api.delivery import deliver
from app.api.openapi import documented
from app.protocol.completions import Completion, CompletionRequest
from app.serving.completions import CompletionService


class CompletionsController(Controller):
    path = "/v1/completions"

    @post(
        "",
        status_code=200,
        operation_id="createCompletion",
        summary="Create a completion (legacy)",
        opt=documented(CompletionRequest, json=Completion, stream=Completion),
    )
    async def create(self, request: Request, completion_service: CompletionService) -> Response[bytes] | Stream:
        body = await parse_body(request, CompletionRequest)
        return await deliver(request, completion_service, await completion_service.prepare(body), stream=body.stream)
