"""The media error: its kind decides the HTTP status and the span's error type."""

from __future__ import annotations

import pytest

from app.media.failures import MediaError, MediaErrorKind


@pytest.mark.parametrize(
    ("kind", "status"), [("invalid", 400), ("refused", 400), ("too_large", 413), ("unavailable", 500)]
)
def test_each_kind_has_its_status_and_code(kind: MediaErrorKind, status: int) -> None:
    error = MediaError("message", kind)
    assert (error.status, error.code, error.message, str(error)) == (status, f"media_{kind}", "message", "message")


def test_bad_data_is_the_default_kind() -> None:
    assert MediaError("bad").kind == "invalid"
