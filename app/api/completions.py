"""POST /v1/completions."""

from __future__ import annotations

from litestar import Controller, Request, Response, post
from litestar.response import Stream

from app.api.body import parse_body
from app.api.disconnect import unless_disconnected
from app.api.sse import sse_response
from app.protocol.completions import CompletionRequest
from app.serving.completions import CompletionService


class CompletionsController(Controller):
    path = "/v1/completions"

    @post("", status_code=200)
    async def create(self, request: Request, completion_service: CompletionService) -> Response[bytes] | Stream:
        body = await parse_body(request, CompletionRequest)
        prepared = await completion_service.prepare(body)
        if body.stream:
            return sse_response(completion_service.stream(prepared))
        completion = await unless_disconnected(request, completion_service.complete(prepared))
        return Response(completion.model_dump_json(exclude_none=True).encode(), media_type="application/json")
