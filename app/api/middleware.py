"""ASGI middleware: request ids and API-key checks."""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Sequence

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import AuthenticationFailed

_GUARDED_PREFIXES = ("/v1/", "/load_model")


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Honours ``X-Request-ID`` (or makes one), echoes it, and binds it to every log line."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:128] or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        with structlog.contextvars.bound_contextvars(http_request_id=request_id):
            await app(scope, receive, send_with_id)

    return middleware


def api_key_middleware(keys: Sequence[str]):
    """Guards /v1/* and /load_model with ``Authorization: Bearer <key>`` (constant-time compare)."""
    encoded = [key.encode() for key in keys]

    def accepted(header: bytes) -> bool:
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        token = token.strip()
        # compare against every key so timing does not reveal which (or whether one) matched
        return sum(hmac.compare_digest(token, key) for key in encoded) > 0

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            guarded = (
                scope["type"] == "http" and scope["method"] != "OPTIONS" and scope["path"].startswith(_GUARDED_PREFIXES)
            )
            if guarded and not accepted(dict(scope["headers"]).get(b"authorization", b"")):
                error = AuthenticationFailed("Missing or incorrect API key. Send `Authorization: Bearer <key>`.")
                body = json.dumps(error.body()).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": error.status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            await app(scope, receive, send)

        return middleware

    return factory
