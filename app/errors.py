"""Errors that reach clients.

Every error a client can see is one of these exceptions, raised where it is found and turned into
OpenAI's JSON shape (``{"error": {"message", "type", "param", "code"}}``) by the single handler in
``app.api.error_handler``. This module imports nothing of ours so every layer may raise them.
"""

from __future__ import annotations


class HfServeError(Exception):
    """Base class: an HTTP status plus OpenAI's error ``type``/``code``/``param``."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(HfServeError):
    status = 400
    type = "invalid_request_error"


class UnsupportedParameter(InvalidRequest):
    """A known request field this server or this model cannot honour (never silently ignored)."""

    code = "unsupported_parameter"


class PromptTooLong(InvalidRequest):
    code = "context_length_exceeded"


class ModelNotAllowed(InvalidRequest):
    """The server is pinned to one model and the request named another."""

    code = "model_not_allowed"


class AuthenticationFailed(HfServeError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class ModelNotFound(HfServeError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"

    def __init__(self, model: str, detail: str | None = None) -> None:
        message = f"The model `{model}` does not exist or is not available on this server."
        super().__init__(f"{message} {detail}" if detail else message, param="model")


class NotFound(HfServeError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class PayloadTooLarge(HfServeError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class _RetryLater(HfServeError):
    """Temporarily unable to serve: carries ``Retry-After``."""

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class Overloaded(_RetryLater):
    status = 429
    type = "rate_limit_error"
    code = "server_overloaded"


class ServiceUnavailable(_RetryLater):
    status = 503
    type = "server_error"
    code = "service_unavailable"


class ModelLoadFailed(HfServeError):
    status = 500
    type = "server_error"
    code = "model_load_failed"


class EngineFailure(HfServeError):
    status = 500
    type = "server_error"
    code = "engine_error"
