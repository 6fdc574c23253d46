"""ASGI middleware: request ids, request telemetry and API-key checks."""

from __future__ import annotations

import asyncio
import hmac
import json
import uuid
from collections.abc import Callable, Sequence

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.api.error_handler import anthropic_body, is_anthropic
from app.errors import AuthenticationFailed
from app.observability.telemetry import Telemetry, note_error
from app.observability.tracing import traceparent_trace_id

GUARDED_PREFIXES = ("/v1/", "/load_model", "/tokenize", "/detokenize", "/v2/", "/rerank", "/score")
_UNOBSERVED = frozenset({"/health", "/ready", "/metrics"})  # probes and scrapes: neither traced nor counted


def request_middleware(telemetry: Telemetry) -> Callable[[ASGIApp], ASGIApp]:
    """Honours ``X-Request-ID`` (or makes one), echoes it, and binds it (and the trace id) to every log line.
    With telemetry on, each request is also a span and a sample of the request metrics: its status, whether
    its client left before the response was complete (an ``http.disconnect`` first), and its duration."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            headers = dict(scope["headers"])
            request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:128] or uuid.uuid4().hex
            scope.setdefault("state", {})["request_id"] = request_id
            echo = (b"x-request-id", request_id.encode("latin-1"))
            route = scope.get("path_template") or scope["path"]
            if not telemetry.active or route in _UNOBSERVED:
                await _with_request_id(app, scope, receive, send, echo, request_id, headers)
                return
            observed = telemetry.open_request(scope["method"], route, scope["path"], headers, request_id)
            status, complete = 0, False

            async def receive_watched() -> Message:
                message = await receive()
                if message["type"] == "http.disconnect" and not complete:
                    observed.disconnected = True
                elif message["type"] == "http.request" and not message.get("more_body", False):
                    observed.body_received = True
                return message

            async def send_observed(message: Message) -> None:
                nonlocal status, complete
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [*message.get("headers", []), echo]
                elif message["type"] == "http.response.body" and not message.get("more_body", False):
                    complete = True
                await send(message)

            tokens = telemetry.enter(observed)
            try:
                with structlog.contextvars.bound_contextvars(**_log_context(request_id, observed.trace_id_hex)):
                    await app(scope, receive_watched, send_observed)
            except asyncio.CancelledError:
                observed.disconnected = True
                raise
            except BaseException as exc:
                note_error(type(exc).__name__, 500)
                raise
            finally:
                telemetry.leave(tokens)
                telemetry.close_request(observed, status or 500, complete)

        return middleware

    return factory


async def _with_request_id(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, echo: tuple[bytes, bytes], request_id: str, headers: dict
) -> None:
    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), echo]
        await send(message)

    trace_id = traceparent_trace_id(headers.get(b"traceparent"))
    with structlog.contextvars.bound_contextvars(**_log_context(request_id, trace_id)):
        await app(scope, receive, send_with_id)


def _log_context(request_id: str, trace_id: str | None) -> dict[str, str]:
    return {"http_request_id": request_id, "trace_id": trace_id} if trace_id else {"http_request_id": request_id}


def api_key_middleware(keys: Sequence[str]):
    """Guards /v1/*, /load_model, /tokenize, /detokenize and the rerank and score aliases with
    ``Authorization: Bearer <key>`` or Anthropic's ``x-api-key: <key>`` (constant-time compare)."""
    encoded = [key.encode() for key in keys]

    def matches(token: bytes) -> bool:
        # compare against every key so timing does not reveal which (or whether one) matched
        return sum(hmac.compare_digest(token, key) for key in encoded) > 0

    def accepted(headers: dict[bytes, bytes]) -> bool:
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        bearer = scheme.lower() == b"bearer" and matches(token.strip())
        return bearer or (b"x-api-key" in headers and matches(headers[b"x-api-key"].strip()))

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            guarded = (
                scope["type"] == "http" and scope["method"] != "OPTIONS" and scope["path"].startswith(GUARDED_PREFIXES)
            )
            if guarded and not accepted(dict(scope["headers"])):
                error = AuthenticationFailed(
                    "Missing or incorrect API key. Send `Authorization: Bearer <key>` or `x-api-key: <key>`."
                )
                note_error(error.code or error.type, error.status)
                shape = anthropic_body if is_anthropic(scope["path"]) else AuthenticationFailed.body
                body = json.dumps(shape(error)).encode()
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
