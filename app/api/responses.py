"""POST /v1/responses, GET and DELETE /v1/responses/{response_id}, GET its input_items."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, HttpMethod, Request, Response, delete, get, post, route
from litestar.params import Parameter
from litestar.response import Stream

from app.api.body import parse_body
from app.api.delivery import deliver
from app.api.openapi import documented
from app.protocol.response_objects import InputItemList, ResponseDeleted, ResponseEvent, ResponseObject
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

    # Litestar builds a path's automatic OPTIONS answer from one of its handlers only, so with GET and DELETE
    # as two handlers its ``Allow`` would leave one out: this path answers OPTIONS itself.
    @route("/{response_id:str}", http_method=HttpMethod.OPTIONS, include_in_schema=False, status_code=204)
    async def stored_options(self, response_id: str) -> Response[None]:
        return Response(None, status_code=204, headers={"Allow": "DELETE, GET, OPTIONS"})

    @get(
        "/{response_id:str}/input_items",
        operation_id="listInputItems",
        summary="List the input items of a stored response",
        opt=documented(json=InputItemList),
    )
    async def input_items(
        self,
        response_id: str,
        responses_service: ResponsesService,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
        include: list[str] | None = None,
        include_brackets: Annotated[list[str] | None, Parameter(query="include[]")] = None,
    ) -> Response[bytes]:
        """``include`` as ``include=a&include=b`` or, as the OpenAI SDKs send it, ``include[]=a``."""
        includes = [*(include or ()), *(include_brackets or ())]
        page = await responses_service.list_input_items(
            response_id, limit=limit, order=order, after=after, include=includes
        )
        return _json(page.model_dump_json().encode())
