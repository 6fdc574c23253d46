"""POST /v1/responses, GET and DELETE /v1/responses/{response_id}, GET its input_items."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, HttpMethod, Request, Response, get, post, route
from litestar.params import Parameter
from litestar.response import Stream

from app.api.body import parse_body
from app.api.delivery import deliver
from app.api.openapi import documented, documented_by_method, method_operation_ids
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

    # One handler for both methods: Litestar builds a path's automatic OPTIONS answer from one of its
    # handlers only, so with two handlers its ``Allow`` would leave one of them out.
    @route(
        "/{response_id:str}",
        http_method=[HttpMethod.GET, HttpMethod.DELETE],
        status_code=200,
        operation_id=method_operation_ids(get="getResponse", delete="deleteResponse"),
        summary="Get or delete a stored response",
        opt=documented_by_method(get=documented(json=ResponseObject), delete=documented(json=ResponseDeleted)),
    )
    async def stored(self, request: Request, response_id: str, responses_service: ResponsesService) -> Response[bytes]:
        if request.method == HttpMethod.DELETE:
            deleted = await responses_service.delete(response_id)
            return _json(deleted.model_dump_json().encode())
        response = await responses_service.get(response_id)
        return _json(response.model_dump_json(exclude_none=True).encode())

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
