"""Server-Sent Events framing: wire objects in, ``data: ...`` frames out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import structlog
from litestar.response import Stream
from pydantic import BaseModel

from app.errors import HfServeError
from app.observability.telemetry import note_error, phase

log = structlog.get_logger(__name__)

DONE = "data: [DONE]\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


def frame(payload: BaseModel | dict[str, object]) -> str:
    data = payload.model_dump_json(exclude_none=True) if isinstance(payload, BaseModel) else json.dumps(payload)
    return f"data: {data}\n\n"


async def encode(events: AsyncIterator[BaseModel], *, done: bool) -> AsyncIterator[str]:
    """Frames each event; an error mid-stream becomes one final ``data: {"error": ...}`` frame."""
    with phase("stream") as span:
        frames = 0
        try:
            async for event in events:
                frames += 1
                yield frame(event)
        except HfServeError as exc:
            note_error(exc.code or exc.type, exc.status)
            yield frame(exc.body())
            return
        except Exception as exc:
            log.exception("stream_failed", error_type=type(exc).__name__)
            note_error("server_error", 500)
            yield frame(HfServeError("The server had an error while streaming the response.").body())
            return
        finally:
            if span is not None:
                span.set_attribute("hfserve.stream.frames", frames)
        if done:
            yield DONE


def sse_response(events: AsyncIterator[BaseModel], *, done: bool = True) -> Stream:
    return Stream(encode(events, done=done), media_type="text/event-stream", headers=SSE_HEADERS)
