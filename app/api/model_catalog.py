"""GET /v1/models, GET /v1/models/{model} and POST /load_model."""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.response import Stream

from app.api.body import parse_body
from app.api.delivery import sse_response
from app.api.openapi import documented
from app.protocol.model_catalog import LoadModelEvent, LoadModelRequest, ModelCard, ModelList
from app.serving.model_catalog import ModelCatalogService


class ModelCatalogController(Controller):
    @get("/v1/models", operation_id="listModels", summary="List the models", opt=documented(json=ModelList))
    async def list_models(self, model_catalog_service: ModelCatalogService) -> Response[bytes]:
        listing = await model_catalog_service.list_models()
        return Response(listing.model_dump_json().encode(), media_type="application/json")

    @get(
        "/v1/models/{model_id:path}",
        operation_id="retrieveModel",
        summary="Get one model",
        opt=documented(json=ModelCard),
    )
    async def retrieve_model(self, model_id: str, model_catalog_service: ModelCatalogService) -> Response[bytes]:
        card = await model_catalog_service.get_model(model_id.removeprefix("/"))
        return Response(card.model_dump_json().encode(), media_type="application/json")

    @post(
        "/load_model",
        status_code=200,
        operation_id="loadModel",
        summary="Load a model, streaming its progress",
        opt=documented(LoadModelRequest, stream=LoadModelEvent, stream_done=False),
    )
    async def load_model(self, request: Request, model_catalog_service: ModelCatalogService) -> Stream:
        body = await parse_body(request, LoadModelRequest)
        return sse_response(model_catalog_service.load_events(body.model), done=False)
