"""POST /v1/chat/completions."""

from __future__ import annotations

from litestar import Controller, Request, Response, post
from litestar.response import Stream

from app.api.body import parse_body
from app.api.disconnect import unless_disconnected
from app.api.sse import sse_response
from app.protocol.chat import ChatCompletionRequest
from app.serving.chat import ChatService


class ChatController(Controller):
    path = "/v1/chat/completions"

    @post("", status_code=200)
    async def create(self, request: Request, chat_service: ChatService) -> Response[bytes] | Stream:
        body = await parse_body(request, ChatCompletionRequest)
        prepared = await chat_service.prepare(body)
        if body.stream:
            return sse_response(chat_service.stream(prepared))
        completion = await unless_disconnected(request, chat_service.complete(prepared))
        return Response(completion.model_dump_json(exclude_none=True).encode(), media_type="application/json")
