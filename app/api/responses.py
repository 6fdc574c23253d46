"""POST /v1/responses, GET and DELETE /v1/responses/{response_id}."""

from __future__ import annotations

from litestar import Controller, Request, Response, delete, get, post
from litestar.response import Stream

from app.api.body import parse_body
from app.api.delivery import deliver
from app.api.openapi import documented
from app.protocol.response_objects import ResponseDeleted, ResponseEvent, ResponseObject
from app.protocol.responses import ResponseRequest
from app.serving.responses import ResponsesService


def _json(payload: bytes) -> Response[bytes]:
    return Response(payload, media_type="application/json")


class ResponsesController(Controller):
    path = "/v1/responses"

    @post(
        "",
        status_code=200,
        operation_id="createResponse",
        summary="Create a response (Responses API)",
        opt=documented(ResponseRequest, json=ResponseObject, stream=ResponseEvent, stream_done=False),
    )
    async def create(self, request: Request, responses_service: ResponsesService) -> Response[bytes] | Stream:
        body = await parse_body(request, ResponseRequest)
        prepared = await responses_service.prepare(body)  # validation and admission errors: before any response
        return await deliver(request, responses_service, prepared, stream=body.stream, done=False, named=True)

    @get(
        "/{response_id:str}",
        operation_id="getResponse",
        summary="Get a stored response",
        opt=documented(json=ResponseObject),
    )
    async def retrieve(self, response_id: str, responses_service: ResponsesService) -> Response[bytes]:
        response = await responses_service.get(response_id)
        return _json(response.model_dump_json(exclude_none=True).encode())

    @delete(
        "/{response_id:str}",
        status_code=200,
        operation_id="deleteResponse",
        summary="Delete a stored response",
        opt=documented(json=ResponseDeleted),
    )
    async def remove(self, response_id: str, responses_service: ResponsesService) -> Response[bytes]:
        deleted = await responses_service.delete(response_id)
        return _json(deleted.model_dump_json().encode())
