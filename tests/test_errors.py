"""Errors that reach clients: status, OpenAI's error body, and the headers some of them carry."""

from __future__ import annotations

import pytest

from app.errors import (
    AuthenticationFailed,
    EngineFailure,
    HfServeError,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    PromptTooLong,
    ServiceUnavailable,
    UnsupportedParameter,
)


def test_body_is_openais_error_shape() -> None:
    error = InvalidRequest("Bad value.", param="temperature")
    assert error.status == 400
    assert error.body() == {
        "error": {"message": "Bad value.", "type": "invalid_request_error", "param": "temperature", "code": None}
    }
    assert str(error) == "Bad value." and error.headers == {}


def test_a_given_code_overrides_the_class_code_for_that_error_only() -> None:
    assert UnsupportedParameter("x").code == "unsupported_parameter"
    assert UnsupportedParameter("x", code="other").code == "other"
    assert UnsupportedParameter("x").code == "unsupported_parameter"
    assert isinstance(UnsupportedParameter("x"), InvalidRequest) and UnsupportedParameter.status == 400


@pytest.mark.parametrize(
    ("error", "status", "kind", "code"),
    [
        (PromptTooLong("long"), 400, "invalid_request_error", "context_length_exceeded"),
        (AuthenticationFailed("key"), 401, "invalid_request_error", "invalid_api_key"),
        (EngineFailure("boom"), 500, "server_error", "engine_error"),
        (HfServeError("plain"), 500, "server_error", None),
    ],
)
def test_each_kind_has_its_status_type_and_code(error: HfServeError, status: int, kind: str, code: str | None) -> None:
    assert (error.status, error.body()["error"]["type"], error.body()["error"]["code"]) == (status, kind, code)


def test_model_not_found_names_the_model_and_the_param() -> None:
    plain = ModelNotFound("org/name")
    assert plain.status == 404 and plain.param == "model" and plain.code == "model_not_found"
    assert plain.message == "The model `org/name` does not exist or is not available on this server."
    assert ModelNotFound("org/name", "No config.json.").message.endswith("this server. No config.json.")


def test_retry_later_errors_carry_retry_after() -> None:
    busy = Overloaded("Too many requests.", retry_after=7)
    assert (busy.status, busy.code, busy.headers) == (429, "server_overloaded", {"Retry-After": "7"})
    down = ServiceUnavailable("Starting.")
    assert (down.status, down.type, down.headers) == (503, "server_error", {"Retry-After": "1"})
