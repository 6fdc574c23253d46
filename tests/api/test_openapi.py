"""The OpenAPI document and the docs page, on the app run in-process (no model loaded): the document is
valid OpenAPI, every route of the app is in it with the request and response schemas pydantic writes
for its wire models, and the docs page loads nothing from outside the server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import constants
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient
from openapi_spec_validator import validate
from pydantic import TypeAdapter

from app.api.middleware import GUARDED_PREFIXES
from app.api.openapi import DOCS_PATH
from app.main import create_app
from app.observability.telemetry import Telemetry
from app.protocol.anthropic import MessagesRequest
from app.protocol.anthropic_objects import AnthropicError
from app.protocol.audio import TranscriptionRequest
from app.protocol.chat import ChatCompletionRequest
from app.protocol.common import ErrorResponse
from app.settings import Settings

_DOC_ROUTES = re.compile(rf"^(/openapi\.json|{DOCS_PATH}(/.*)?)$")
_BODILESS = {"get", "delete"}
_ANTHROPIC_ROUTES = re.compile(r"^/v1/messages(/.*)?$")  # where errors are in Anthropic's shape


def _app(clean_env: pytest.MonkeyPatch, tmp_path: Path, **values: Any) -> Litestar:
    clean_env.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    return create_app(Settings(**values), telemetry=Telemetry())


@pytest.fixture
def client(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(_app(clean_env, tmp_path, api_key=["secret"])) as test_client:
        yield test_client


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    reply = client.get("/openapi.json")  # no key: the document and the docs page are open
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    return reply.json()


def _component(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return document["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                yield item
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1") and document["info"]["title"] == "hfserve"
    schemas = document["components"]["schemas"]
    error = TypeAdapter(ErrorResponse).json_schema(ref_template="#/components/schemas/{model}")
    definitions = error.pop("$defs")  # the error shape, as pydantic writes it, is what the document holds
    assert schemas["ErrorResponse"] == error and schemas["ErrorDetail"] == definitions["ErrorDetail"]
    assert all(ref.removeprefix("#/components/schemas/") in schemas for ref in _refs(document))


def test_every_route_is_documented_with_its_schemas(client: TestClient, document: dict[str, Any]) -> None:
    routes = [
        (route.path_format, method.lower())
        for route in client.app.routes
        if isinstance(route, HTTPRoute) and not _DOC_ROUTES.match(route.path_format)
        for method in route.methods - {"OPTIONS", "HEAD"}
    ]
    assert len(routes) >= 23
    for path, method in routes:
        operation = document["paths"].get(path, {}).get(method)
        assert operation is not None, f"{method.upper()} {path} is missing from the document"
        success = operation["responses"]["200"]["content"]
        assert success and all(media["schema"] for media in success.values()), f"{method} {path}"
        shape = "AnthropicError" if _ANTHROPIC_ROUTES.match(path) else "ErrorResponse"
        for status in ("4XX", "5XX"):
            error = operation["responses"][status]["content"]["application/json"]["schema"]
            assert error == {"$ref": f"#/components/schemas/{shape}"}, f"{method} {path}"
        if method not in _BODILESS:
            body = operation["requestBody"]["content"]
            assert body and all(media["schema"] for media in body.values()), f"{method} {path} has no request body"


def test_request_schemas_come_from_the_wire_models(document: dict[str, Any]) -> None:
    chat = document["paths"]["/v1/chat/completions"]["post"]
    request = _component(document, chat["requestBody"]["content"]["application/json"]["schema"])
    assert set(request["properties"]) == set(ChatCompletionRequest.model_fields)
    assert request["properties"]["messages"]["minItems"] == 1
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    event = chat["responses"]["200"]["content"]["text/event-stream"]["schema"]
    done, data = event["properties"]["data"]["anyOf"]
    assert done == {"const": "[DONE]"} and data["contentMediaType"] == "application/json"
    chunk, error = (_component(document, schema) for schema in data["contentSchema"]["anyOf"])
    assert chunk["properties"]["object"]["const"] == "chat.completion.chunk" and set(error) >= {"properties"}
    assert set(error["properties"]) == {"error"}
    upload = document["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert set(upload["schema"]["properties"]) == {"file", *TranscriptionRequest.model_fields}
    assert upload["schema"]["properties"]["file"]["format"] == "binary" and "file" in upload["schema"]["required"]


def test_every_json_answer_is_documented_by_its_fields(document: dict[str, Any]) -> None:
    """Wire models that serialize themselves (to keep nulls) are still documented field by field (the
    health reports are free-form objects)."""
    for path, item in document["paths"].items():
        if path in ("/health", "/ready"):
            continue
        for method, operation in item.items():
            media = operation["responses"]["200"]["content"].get("application/json")
            for schema in media["schema"].get("anyOf", [media["schema"]]) if media else ():
                assert _component(document, schema).get("properties"), f"{method} {path}"
    for name in ("ResponseObject", "InputItemList", "Message", "MessageStartEvent", "LoadProgress"):
        assert document["components"]["schemas"][name].get("properties"), name


def test_operation_ids_are_unique_aliases_included(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for item in document["paths"].values() for operation in item.values()]
    assert len(ids) == len(set(ids))
    rerank = {path: document["paths"][path]["post"]["operationId"] for path in ("/v1/rerank", "/rerank", "/v2/rerank")}
    assert rerank == {"/v1/rerank": "rerank", "/rerank": "rerankUnversioned", "/v2/rerank": "rerankV2"}


def test_the_messages_api_is_documented_in_anthropics_shapes(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    error = TypeAdapter(AnthropicError).json_schema(ref_template="#/components/schemas/{model}")
    definitions = error.pop("$defs")
    assert schemas["AnthropicError"] == error
    assert schemas["AnthropicErrorDetail"] == definitions["AnthropicErrorDetail"]
    messages = document["paths"]["/v1/messages"]["post"]
    request = _component(document, messages["requestBody"]["content"]["application/json"]["schema"])
    assert set(request["properties"]) == set(MessagesRequest.model_fields)
    message = _component(document, messages["responses"]["200"]["content"]["application/json"]["schema"])
    assert message["properties"]["type"]["const"] == "message"
    event = messages["responses"]["200"]["content"]["text/event-stream"]["schema"]
    data = event["properties"]["data"]  # no `[DONE]`: Anthropic's stream ends with its message_stop event
    assert data["contentMediaType"] == "application/json" and set(event["properties"]) == {"event", "data"}
    events, stream_error = data["contentSchema"]["anyOf"]
    types = {_component(document, kind)["properties"]["type"]["const"] for kind in events["anyOf"]}
    assert types >= {"message_start", "content_block_delta", "message_delta", "message_stop", "ping"}
    assert stream_error == {"$ref": "#/components/schemas/AnthropicError"}
    assert "Anthropic's error shape" in messages["responses"]["4XX"]["description"]


def test_the_key_guards_what_the_middleware_guards(document: dict[str, Any]) -> None:
    assert {"/v1/", "/load_model", "/tokenize", "/rerank", "/v2/"} <= set(GUARDED_PREFIXES)
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "One of the server's --api-key values.",
    }
    for path, item in document["paths"].items():
        for operation in item.values():
            guarded = path.startswith(GUARDED_PREFIXES)
            assert ("security" in operation) is guarded, path


def test_without_keys_nothing_is_guarded(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with TestClient(_app(clean_env, tmp_path)) as client:
        document = client.get("/openapi.json").json()
    assert "securitySchemes" not in document["components"]
    assert not any("security" in op for item in document["paths"].values() for op in item.values())


def test_the_docs_page_loads_only_the_servers_own_files(client: TestClient, document: dict[str, Any]) -> None:
    page = client.get(DOCS_PATH)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert len(assets) >= 4 and all(asset.startswith(f"{DOCS_PATH}/assets/") for asset in assets)
    assert "cdn" not in page.text and '"openapi":"3.1' in page.text.replace(" ", "")
    types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for asset in assets:
        reply = client.get(asset)
        assert reply.status_code == 200 and reply.headers["content-type"].startswith(types[Path(asset).suffix]), asset
    assert client.get(f"{DOCS_PATH}/assets/swagger-editor.js").status_code == 404  # only the page's own files
    assert client.get(f"{DOCS_PATH}/openapi.json").json() == document


def test_an_error_matches_the_documented_shape(client: TestClient) -> None:
    reply = client.post("/v1/chat/completions", content=b"{}", headers={"Authorization": "Bearer secret"})
    assert reply.status_code == 400
    ErrorResponse.model_validate(reply.json())


def test_an_anthropic_error_matches_its_documented_shape(client: TestClient) -> None:
    reply = client.post("/v1/messages", content=b"{}", headers={"x-api-key": "secret"})
    assert reply.status_code == 400
    assert AnthropicError.model_validate(reply.json()).error.type == "invalid_request_error"
