"""Delivering a generating endpoint's output: SSE frames (named or not, ``[DONE]`` or not), errors that
happen mid-stream as one last frame, and JSON once complete."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from litestar import Request
from litestar.response import Stream
from litestar.types import Message
from pydantic import BaseModel

from app.api.delivery import DONE, SSE_HEADERS, deliver, encode, frame
from app.api.error_handler import anthropic_body
from app.errors import Overloaded


class Delta(BaseModel):
    type: str = "response.output_text.delta"
    delta: str
    note: str | None = None


async def events(*items: BaseModel, then: Exception | None = None) -> AsyncIterator[BaseModel]:
    for item in items:
        yield item
    if then is not None:
        raise then


async def frames(stream: AsyncIterator[str]) -> list[str]:
    return [piece async for piece in stream]


def test_a_frame_is_compact_json_without_nulls_and_may_be_named() -> None:
    assert frame(Delta(delta="Hi")) == 'data: {"type":"response.output_text.delta","delta":"Hi"}\n\n'
    assert frame({"a": 1}, "error") == 'event: error\ndata: {"a": 1}\n\n'


async def test_a_stream_ends_with_done_only_when_asked() -> None:
    two = (Delta(delta="a"), Delta(delta="b"))
    assert await frames(encode(events(*two), done=True)) == [frame(two[0]), frame(two[1]), DONE]
    assert await frames(encode(events(*two), done=False)) == [frame(two[0]), frame(two[1])]


async def test_named_streams_carry_each_event_type() -> None:
    (only,) = await frames(encode(events(Delta(delta="a")), done=False, named=True))
    assert only.startswith("event: response.output_text.delta\ndata: ")


async def test_a_client_error_mid_stream_is_its_body_and_the_end() -> None:
    got = await frames(encode(events(Delta(delta="a"), then=Overloaded("Busy.")), done=True))
    assert got[0] == frame(Delta(delta="a")) and len(got) == 2  # no [DONE] after an error
    assert json.loads(got[1].removeprefix("data: "))["error"]["code"] == "server_overloaded"
    (named,) = await frames(encode(events(then=Overloaded("Busy.")), done=True, named=True))
    assert named.startswith("event: error\n")


async def test_an_unexpected_error_mid_stream_says_nothing_of_its_cause() -> None:
    (only,) = await frames(encode(events(then=RuntimeError("secret detail")), done=True))
    error = json.loads(only.removeprefix("data: "))["error"]
    assert error["type"] == "server_error" and "secret" not in error["message"]


async def test_a_mid_stream_error_takes_the_endpoints_shape() -> None:
    anthropic = {"error_body": anthropic_body, "done": False, "named": True}
    (busy,) = await frames(encode(events(then=Overloaded("Busy.")), **anthropic))
    assert busy == frame({"type": "error", "error": {"type": "overloaded_error", "message": "Busy."}}, "error")
    (failed,) = await frames(encode(events(then=RuntimeError("secret detail")), **anthropic))
    body = json.loads(failed.split("data: ", 1)[1])
    assert body["error"]["type"] == "api_error" and "secret" not in body["error"]["message"]


class Service:
    def stream(self, prepared: str) -> AsyncIterator[BaseModel]:
        return events(Delta(delta=prepared))

    def complete(self, prepared: str) -> Awaitable[BaseModel]:
        async def result() -> BaseModel:
            return Delta(delta=prepared)

        return result()


def request() -> Request[Any, Any, Any]:
    """A request whose client sent its body and stays connected."""
    sent: list[bool] = []

    async def receive() -> Message:
        if not sent:
            sent.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive=receive)  # type: ignore[typeddict-item]


async def test_deliver_streams_as_sse_or_answers_json_once_complete() -> None:
    streamed = await deliver(request(), Service(), "x", stream=True)
    assert isinstance(streamed, Stream) and streamed.media_type == "text/event-stream"
    assert SSE_HEADERS.items() <= dict(streamed.headers).items()
    answered = await deliver(request(), Service(), "x", stream=False)
    assert answered.media_type == "application/json"
    assert json.loads(answered.content) == {"type": "response.output_text.delta", "delta": "x"}
