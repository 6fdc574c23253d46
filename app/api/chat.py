"""POST /v1/chat/completions."""

from __future__ import annotations

from litestar import Controller, Request, Response, post
from litestar.response import Stream

from app.api.body import parse_body
from app.api.delivery import deliver
from app.api.openapi import documented
from app.protocol.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from app.serving.chat import ChatService


class ChatController(Controller):
    path = "/v1/chat/completions"

    @post(
        "",
        status_code=200,
        operation_id="createChatCompletion",
        summary="Create a chat completion",
        opt=documented(ChatCompletionRequest, json=ChatCompletion, stream=ChatCompletionChunk),
    )
    async def create(self, request: Request, chat_service: ChatService) -> Response[bytes] | Stream:
        body = await parse_body(request, ChatCompletionRequest)
        prepared = await chat_service.prepare(body)  # validation and admission errors: before any response
        return await deliver(request, chat_service, prepared, stream=body.stream)
