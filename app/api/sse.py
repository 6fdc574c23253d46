"""Server-Sent Events framing: wire objects in, ``data: ...`` frames out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import structlog
from litestar.response import Stream
from pydantic import BaseModel

from app.errors import HfServeError

log = structlog.get_logger(__name__)

DONE = "data: [DONE]\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


def frame(payload: BaseModel | dict[str, object]) -> str:
    data = payload.model_dump_json(exclude_none=True) if isinstance(payload, BaseModel) else json.dumps(payload)
    return f"data: {data}\n\n"


async def encode(events: AsyncIterator[BaseModel], *, done: bool) -> AsyncIterator[str]:
    """Frames each event; an error mid-stream becomes one final ``data: {"error": ...}`` frame."""
    try:
        async for event in events:
            yield frame(event)
    except HfServeError as exc:
        yield frame(exc.body())
        return
    except Exception as exc:
        log.exception("stream_failed", error_type=type(exc).__name__)
        yield frame(HfServeError("The server had an error while streaming the response.").body())
        return
    if done:
        yield DONE


def sse_response(events: AsyncIterator[BaseModel], *, done: bool = True) -> Stream:
    return Stream(encode(events, done=done), media_type="text/event-stream", headers=SSE_HEADERS)
