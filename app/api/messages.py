"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API (its errors are shaped by
the one error handler, by route)."""

from __future__ import annotations

from litestar import Controller, Request, Response, post
from litestar.response import Stream

from app.api.body import parse_body
from app.api.delivery import deliver
from app.api.error_handler import anthropic_body
from app.api.openapi import ANTHROPIC_ERRORS, documented
from app.protocol.anthropic import CountTokensRequest, MessagesRequest
from app.protocol.anthropic_objects import CountTokensResult, Message, MessageStreamEvent
from app.serving.anthropic_messages import AnthropicMessagesService


def _request_id(request: Request) -> dict[str, str]:
    return {"request-id": request.scope.get("state", {}).get("request_id", "")}


class MessagesController(Controller):
    path = "/v1/messages"

    @post(
        "",
        status_code=200,
        operation_id="createMessage",
        summary="Create a message (Anthropic's Messages API)",
        opt=documented(
            MessagesRequest, json=Message, stream=MessageStreamEvent, stream_done=False, errors=ANTHROPIC_ERRORS
        ),
    )
    async def create(self, request: Request, messages_service: AnthropicMessagesService) -> Response[bytes] | Stream:
        body = await parse_body(request, MessagesRequest)
        prepared = await messages_service.prepare(body)  # validation and admission errors: before any response
        return await deliver(
            request,
            messages_service,
            prepared,
            stream=body.stream,
            done=False,
            named=True,
            error_body=anthropic_body,
            headers=_request_id(request),
        )

    @post(
        "/count_tokens",
        status_code=200,
        operation_id="countMessageTokens",
        summary="Count the input tokens of a message (Anthropic's Messages API)",
        opt=documented(CountTokensRequest, json=CountTokensResult, errors=ANTHROPIC_ERRORS),
    )
    async def count_tokens(self, request: Request, messages_service: AnthropicMessagesService) -> Response[bytes]:
        body = await parse_body(request, CountTokensRequest)
        result = await messages_service.count_tokens(body)
        return Response(result.model_dump_json().encode(), media_type="application/json", headers=_request_id(request))
