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


def frame(payload: BaseModel | dict[str, object], event: str | None = None) -> str:
    data = payload.model_dump_json(exclude_none=True) if isinstance(payload, BaseModel) else json.dumps(payload)
    return f"event: {event}\ndata: {data}\n\n" if event else f"data: {data}\n\n"


async def encode(events: AsyncIterator[BaseModel], *, done: bool, named: bool = False) -> AsyncIterator[str]:
    """Frames each event; an error mid-stream becomes one final ``data: {"error": ...}`` frame.

    ``named`` streams (the Responses API) also carry each event's ``type`` as the SSE ``event:`` field.
    """
    try:
        async for event in events:
            yield frame(event, getattr(event, "type", None) if named else None)
    except HfServeError as exc:
        yield frame(exc.body(), "error" if named else None)
        return
    except Exception as exc:
        log.exception("stream_failed", error_type=type(exc).__name__)
        error = HfServeError("The server had an error while streaming the response.")
        yield frame(error.body(), "error" if named else None)
        return
    if done:
        yield DONE


def sse_response(events: AsyncIterator[BaseModel], *, done: bool = True, named: bool = False) -> Stream:
    return Stream(encode(events, done=done, named=named), media_type="text/event-stream", headers=SSE_HEADERS)
