"""A request's events as serving reads them: a reader that falls behind gets a choice's backlog merged, and a
stream closed or dropped before its end aborts the request."""

from __future__ import annotations

import gc

from app.engine.client.request_stream import RequestStream
from app.engine.types import EngineEvent, FinishEvent, TokenEvent


async def test_a_backlog_of_a_choice_is_merged_into_one_event() -> None:
    aborted: list[str] = []
    stream = RequestStream("r", 2, aborted.append)
    stream.queue.put_nowait([TokenEvent("r", (1,), "a"), TokenEvent("r", (2,), "b"), TokenEvent("r", (7,), "z", 1)])
    stream.queue.put_nowait([TokenEvent("r", (3,), "c"), FinishEvent("r", "length", 1, 3)])
    stream.queue.put_nowait([FinishEvent("r", "length", 1, 1, index=1)])
    events: list[EngineEvent] = [e async for e in stream]
    assert events[0] == TokenEvent("r", (1, 2), "ab")  # merged up to the other choice's event
    assert events[1] == TokenEvent("r", (7,), "z", 1)
    assert events[2] == TokenEvent("r", (3,), "c")
    assert [type(e) for e in events[3:]] == [FinishEvent, FinishEvent]
    assert aborted == []  # read to the end: nothing to abort


async def test_closing_before_the_end_aborts_once() -> None:
    aborted: list[str] = []
    stream = RequestStream("r", 1, aborted.append)
    stream.queue.put_nowait([TokenEvent("r", (1,), "a")])
    assert await anext(stream) == TokenEvent("r", (1,), "a")
    await stream.aclose()
    stream.close()
    assert aborted == ["r"]


def test_dropping_an_unread_stream_aborts_it() -> None:
    aborted: list[str] = []
    stream = RequestStream("r", 1, aborted.append)
    del stream
    gc.collect()
    assert aborted == ["r"]
