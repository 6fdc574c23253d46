"""The one place errors become OpenAI-shaped JSON responses."""

from __future__ import annotations

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from app.errors import HfServeError
from app.observability.telemetry import note_error

log = structlog.get_logger(__name__)

_HTTP_TYPES = {
    401: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def error_response(error: HfServeError) -> Response[dict[str, object]]:
    note_error(error.code or error.type, error.status)
    return Response(content=error.body(), status_code=error.status, headers=error.headers)


def handle_app_error(_: Request, exc: HfServeError) -> Response[dict[str, object]]:
    return error_response(exc)


def handle_http_error(_: Request, exc: HTTPException) -> Response[dict[str, object]]:
    """Litestar's own errors (unknown route, wrong method, body too large...)."""
    status = exc.status_code
    error = HfServeError(str(exc.detail), code=f"http_{status}")
    error.status = status
    error.type = _HTTP_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    error.headers = dict(exc.headers or {})
    return error_response(error)


def handle_unexpected(request: Request, exc: Exception) -> Response[dict[str, object]]:
    """A real server fault: log the traceback, answer 500 without it."""
    log.exception("unhandled_error", path=request.url.path, error_type=type(exc).__name__)
    error = HfServeError("The server had an error while processing your request.")
    error.status = HTTP_500_INTERNAL_SERVER_ERROR
    return error_response(error)
