"""The one exception media code raises; serving maps it to 400, 413 or 500 and names the part."""

from __future__ import annotations

from typing import Literal

MediaErrorKind = Literal["invalid", "too_large", "refused", "unavailable"]


class MediaError(Exception):
    """``invalid``: bad data or URL (400); ``refused``: the fetch policy forbids it (400);
    ``too_large``: past a limit (413); ``unavailable``: the server lacks a decoder (500)."""

    def __init__(self, message: str, kind: MediaErrorKind = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind

    @property
    def code(self) -> str:
        """What a span records as its ``error.type``."""
        return f"media_{self.kind}"

    @property
    def status(self) -> int:
        """The HTTP status it becomes: only a missing decoder is the server's fault."""
        return {"too_large": 413, "unavailable": 500}.get(self.kind, 400)
