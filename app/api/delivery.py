"""How every generating endpoint delivers its output: SSE for ``stream: true``, else JSON once complete."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol, TypeVar

from litestar import Request, Response
from litestar.response import Stream
from pydantic import BaseModel

from app.api.disconnect import unless_disconnected
from app.api.sse import sse_response

PreparedT = TypeVar("PreparedT", contravariant=True)


class GeneratingService(Protocol[PreparedT]):
    def stream(self, prepared: PreparedT) -> AsyncIterator[BaseModel]: ...

    def complete(self, prepared: PreparedT) -> Awaitable[BaseModel]: ...


async def deliver(
    request: Request[Any, Any, Any],
    service: GeneratingService[Any],
    prepared: Any,
    *,
    stream: bool,
    done: bool = True,
    named: bool = False,
) -> Response[bytes] | Stream:
    """``done``: end the stream with ``data: [DONE]``; ``named``: SSE ``event:`` fields (Responses API)."""
    if stream:
        return sse_response(service.stream(prepared), done=done, named=named)
    result = await unless_disconnected(request, service.complete(prepared))  # type: ignore[arg-type]
    return Response(result.model_dump_json(exclude_none=True).encode(), media_type="application/json")
