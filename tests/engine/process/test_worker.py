"""The engine process's request loop: messages by type, ``Stop`` ends it, anything else is an error."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from multiprocessing.connection import Connection

import pytest

from app.engine.messages import Abort, Generate, ProtocolError, Stop
from app.engine.process.worker import serve_requests
from app.engine.types import GenerationRequest, SamplingParams


class RecordingEngine:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def submit(self, request: GenerationRequest) -> None:
        self.calls.append(("submit", request.request_id))

    def abort(self, request_id: str) -> None:
        self.calls.append(("abort", request_id))


@pytest.fixture
def pipe() -> Iterator[tuple[Connection, Connection]]:
    parent, child = multiprocessing.get_context("spawn").Pipe(duplex=True)
    yield parent, child
    parent.close()
    child.close()


def test_requests_and_aborts_reach_the_engine_until_stop(pipe: tuple[Connection, Connection]) -> None:
    parent, child = pipe
    engine = RecordingEngine()
    request = GenerationRequest("r1", [5], SamplingParams(max_tokens=2))
    for message in (Generate(request), Abort("r1"), Stop(), Abort("after-stop")):
        parent.send(message)
    serve_requests(child, engine)  # type: ignore[arg-type]
    assert engine.calls == [("submit", "r1"), ("abort", "r1")]


def test_an_unknown_message_is_an_error(pipe: tuple[Connection, Connection]) -> None:
    parent, child = pipe
    engine = RecordingEngine()
    parent.send(("generate", GenerationRequest("r1", [5], SamplingParams(max_tokens=2))))  # the old tuple form
    with pytest.raises(ProtocolError):
        serve_requests(child, engine)  # type: ignore[arg-type]
    assert engine.calls == []
