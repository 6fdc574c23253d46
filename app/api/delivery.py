"""How every streaming endpoint delivers its output: SSE for ``stream: true`` (the one place that frames
Server-Sent Events: wire objects in, ``data: ...`` frames out), else JSON once complete."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import structlog
from litestar import Request, Response
from litestar.response import Stream
from pydantic import BaseModel

from app.api.disconnect import unless_disconnected
from app.errors import HfServeError
from app.observability.telemetry import note_error, phase

log = structlog.get_logger(__name__)

DONE = "data: [DONE]\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


def frame(payload: BaseModel | dict[str, object], event: str | None = None) -> str:
    data = payload.model_dump_json(exclude_none=True) if isinstance(payload, BaseModel) else json.dumps(payload)
    return f"event: {event}\ndata: {data}\n\n" if event else f"data: {data}\n\n"


ErrorBody = Callable[[HfServeError], Mapping[str, object]]


def _openai_body(error: HfServeError) -> Mapping[str, object]:
    return error.body()


async def encode(
    events: AsyncIterator[BaseModel], *, done: bool, named: bool = False, error_body: ErrorBody = _openai_body
) -> AsyncIterator[str]:
    """Frames each event; an error mid-stream becomes one final ``data: {"error": ...}`` frame (its shape
    by ``error_body``).

    ``named`` streams (the Responses and Anthropic Messages APIs) also carry each event's ``type`` as the
    SSE ``event:`` field.
    """
    with phase("stream") as span:
        frames = 0
        try:
            async for event in events:
                frames += 1
                yield frame(event, getattr(event, "type", None) if named else None)
        except HfServeError as exc:
            note_error(exc.code or exc.type, exc.status)
            yield frame(dict(error_body(exc)), "error" if named else None)
            return
        except Exception as exc:
            log.exception("stream_failed", error_type=type(exc).__name__)
            note_error("server_error", 500)
            error = HfServeError("The server had an error while streaming the response.")
            yield frame(dict(error_body(error)), "error" if named else None)
            return
        finally:
            if span is not None:
                span.set_attribute("hfserve.stream.frames", frames)
        if done:
            yield DONE


def sse_response(
    events: AsyncIterator[BaseModel],
    *,
    done: bool = True,
    named: bool = False,
    error_body: ErrorBody = _openai_body,
    headers: Mapping[str, str] | None = None,
) -> Stream:
    frames = encode(events, done=done, named=named, error_body=error_body)
    return Stream(frames, media_type="text/event-stream", headers={**SSE_HEADERS, **(headers or {})})


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
    error_body: ErrorBody = _openai_body,
    headers: Mapping[str, str] | None = None,
) -> Response[bytes] | Stream:
    """``done``: end the stream with ``data: [DONE]``; ``named``: SSE ``event:`` fields (Responses and
    Anthropic Messages APIs); ``error_body``: the shape of a mid-stream error; ``headers``: added to the
    response."""
    if stream:
        return sse_response(service.stream(prepared), done=done, named=named, error_body=error_body, headers=headers)
    result = await unless_disconnected(request, service.complete(prepared))  # type: ignore[arg-type]
    body = result.model_dump_json(exclude_none=True).encode()
    return Response(body, media_type="application/json", headers=dict(headers or {}))
