"""The one place errors become JSON responses: OpenAI's shape, or Anthropic's on the Messages API's routes
(``{"type": "error", "error": {"type", "message"}}``, with Anthropic's error types and ``request-id``)."""

from __future__ import annotations

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from app.errors import HfServeError
from app.observability.telemetry import note_error
from app.protocol.anthropic_objects import AnthropicError, AnthropicErrorDetail

log = structlog.get_logger(__name__)

ANTHROPIC_PREFIX = "/v1/messages"
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}
_HTTP_TYPES = {
    401: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def is_anthropic(path: str) -> bool:
    return path == ANTHROPIC_PREFIX or path.startswith(f"{ANTHROPIC_PREFIX}/")


def anthropic_status(error: HfServeError) -> int:
    """A full queue is Anthropic's 529 ``overloaded_error`` (which its clients retry); else the same status."""
    return 529 if error.status == 429 and error.code == "server_overloaded" else error.status


def anthropic_body(error: HfServeError) -> dict[str, object]:
    status = anthropic_status(error)
    kind = _ANTHROPIC_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
    return AnthropicError(error=AnthropicErrorDetail(type=kind, message=error.message)).model_dump()


def error_response(error: HfServeError, request: Request | None = None) -> Response[dict[str, object]]:
    note_error(error.code or error.type, error.status)
    if request is not None and is_anthropic(request.url.path):
        headers = {**error.headers, "request-id": request.scope.get("state", {}).get("request_id", "")}
        return Response(content=anthropic_body(error), status_code=anthropic_status(error), headers=headers)
    return Response(content=error.body(), status_code=error.status, headers=error.headers)


def handle_app_error(request: Request, exc: HfServeError) -> Response[dict[str, object]]:
    return error_response(exc, request)


def handle_http_error(request: Request, exc: HTTPException) -> Response[dict[str, object]]:
    """Litestar's own errors (unknown route, wrong method, body too large...)."""
    status = exc.status_code
    error = HfServeError(str(exc.detail), code=f"http_{status}")
    error.status = status
    error.type = _HTTP_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    error.headers = dict(exc.headers or {})
    return error_response(error, request)


def handle_unexpected(request: Request, exc: Exception) -> Response[dict[str, object]]:
    """A real server fault: log the traceback, answer 500 without it."""
    log.exception("unhandled_error", path=request.url.path, error_type=type(exc).__name__)
    error = HfServeError("The server had an error while processing your request.")
    error.status = HTTP_500_INTERNAL_SERVER_ERROR
    return error_response(error, request)
