"""GET /v1/models and POST /load_model."""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.response import Stream

from app.api.body import parse_body
from app.api.sse import sse_response
from app.protocol.models import LoadModelRequest
from app.serving.models import ModelsService


class ModelsController(Controller):
    @get("/v1/models")
    async def list_models(self, models_service: ModelsService) -> Response[bytes]:
        listing = await models_service.list_models()
        return Response(listing.model_dump_json().encode(), media_type="application/json")

    @post("/load_model", status_code=200)
    async def load_model(self, request: Request, models_service: ModelsService) -> Stream:
        body = await parse_body(request, LoadModelRequest)
        return sse_response(models_service.load_events(body.model), done=False)
