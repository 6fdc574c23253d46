"""A non-streaming handler's work races the client's ``http.disconnect``: the work wins, or it is cancelled."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar import Request
from litestar.types import Message

from app.api.disconnect import ClientDisconnected, unless_disconnected


class Client:
    """The ASGI receive side of one request: body messages, then a disconnect when ``leave`` is set."""

    def __init__(self) -> None:
        self.leave = asyncio.Event()
        self.sent_body = False

    async def receive(self) -> Message:
        if not self.sent_body:
            self.sent_body = True
            return {"type": "http.request", "body": b"{}", "more_body": False}
        await self.leave.wait()
        return {"type": "http.disconnect"}


def request_from(client: Client) -> Request[Any, Any, Any]:
    return Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive=client.receive)  # type: ignore[typeddict-item]


async def test_finished_work_returns_its_result() -> None:
    async def work() -> str:
        await asyncio.sleep(0.01)
        return "done"

    assert await unless_disconnected(request_from(Client()), work()) == "done"


async def test_the_work_error_is_raised_as_is() -> None:
    async def work() -> None:
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        await unless_disconnected(request_from(Client()), work())


async def test_a_disconnect_cancels_the_work_and_runs_its_cleanup() -> None:
    client, cleaned = Client(), asyncio.Event()

    async def work() -> str:
        try:
            await asyncio.sleep(60)
            return "too late"
        finally:
            cleaned.set()  # where the request is aborted in the engine

    async def leave_soon() -> None:
        await asyncio.sleep(0.05)
        client.leave.set()

    leaving = asyncio.create_task(leave_soon())
    with pytest.raises(ClientDisconnected) as caught:
        await asyncio.wait_for(unless_disconnected(request_from(client), work()), 5)
    await leaving
    assert cleaned.is_set()
    assert (caught.value.status, caught.value.code) == (499, "client_disconnected")


async def test_cancelling_the_caller_cancels_the_work() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    caller = asyncio.create_task(unless_disconnected(request_from(Client()), work()))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.sleep(0)
    assert cancelled.is_set()
