"""ResponsesService's run loop over a scripted engine stream (the engine contract's test double):
failures become ``response.failed``, reasoning tokens are counted, and what is stored."""

from __future__ import annotations

import pytest

from app.engine.types import EngineEvent, FinishEvent, TokenEvent
from app.errors import EngineFailure
from app.parsers.base import ParsedDelta
from app.protocol.response_objects import ResponseObject
from app.protocol.responses import MessageItem
from app.serving.response_store import ResponseStore
from app.serving.responses import PreparedResponse, ResponsesService
from app.store.base import StoreLimits, StoreUnavailable
from app.store.memory import MemoryStore
from tests.serving.scripted import closed, prepared


class BracketReasoning:
    """Text inside [...] is reasoning: a stand-in for a model family's reasoning parser."""

    def __init__(self) -> None:
        self._inside = False

    def feed(self, text: str) -> list[ParsedDelta]:
        deltas = []
        for char in text:
            if char in "[]":
                self._inside = char == "["
            elif self._inside:
                deltas.append(ParsedDelta(reasoning=char))
            else:
                deltas.append(ParsedDelta(content=char))
        return deltas

    def finish(self) -> list[ParsedDelta]:
        return []


def _store() -> ResponseStore:
    return ResponseStore(MemoryStore(StoreLimits(max_size=10, ttl=60)))


def _service(store: ResponseStore) -> ResponsesService:
    return ResponsesService(preparer=None, store=store)  # type: ignore[arg-type]


def _prepared(events: list[EngineEvent], parser=None, store: bool = True) -> PreparedResponse:  # type: ignore[no-untyped-def]
    response = ResponseObject(id="resp_1", created_at=0, status="in_progress", model="m@main", store=store)
    return PreparedResponse(prepared(events, parser=parser), response, [MessageItem(role="user", content="hi")])


def _token(text: str, n: int = 1) -> TokenEvent:
    return TokenEvent("resp_1", tuple(range(n)), text)


async def test_engine_failure_ends_the_stream_with_response_failed() -> None:
    store = _store()
    p = _prepared([_token("Hel"), FinishEvent("resp_1", "error", 3, 1, error="CUDA out of memory")])
    events = [event async for event in _service(store).stream(p)]
    assert [e.type for e in events][-3:] == [
        "response.content_part.done",
        "response.output_item.done",
        "response.failed",
    ]
    failed = events[-1].response
    assert failed.status == "failed" and failed.error.code == "server_error"
    assert "CUDA out of memory" in failed.error.message
    assert closed(p.generation) and (await store.get("resp_1")).response.status == "failed"


async def test_non_stream_failure_raises() -> None:
    p = _prepared([FinishEvent("resp_1", "error", 3, 0, error="boom")])
    with pytest.raises(EngineFailure):
        await _service(_store()).complete(p)


async def test_reasoning_tokens_are_the_engines_count() -> None:
    p = _prepared(
        [_token("[th", 2), _token("ink]", 3), _token("Hi", 1), FinishEvent("resp_1", "stop", 4, 6, reasoning_tokens=5)],
        parser=BracketReasoning,
    )
    response = await _service(_store()).complete(p)
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.output[0].content[0].text == "think"
    assert response.output[1].content[0].text == "Hi"
    assert response.usage.output_tokens_details.reasoning_tokens == 5
    assert response.usage.output_tokens == 6


async def test_store_false_is_not_stored_and_abandoned_streams_close() -> None:
    store = _store()
    await _service(store).complete(_prepared([_token("a"), FinishEvent("resp_1", "stop", 1, 1)], store=False))
    assert await store.get("resp_1") is None
    p = _prepared([_token("a"), _token("b"), FinishEvent("resp_1", "stop", 1, 2)])
    stream = _service(store).stream(p)
    async for event in stream:
        if event.type == "response.output_text.delta":
            break
    await stream.aclose()  # the client went away
    assert closed(p.generation) and await store.get("resp_1") is None


class BrokenDocuments(MemoryStore):
    """A store whose backend went away after the request was admitted."""

    async def put(self, key: str, document: bytes) -> None:
        raise StoreUnavailable("The response store (Redis at redis://cache:6379/0) cannot be reached: ConnectionError.")


async def test_a_response_that_cannot_be_stored_never_completes() -> None:
    store = ResponseStore(BrokenDocuments(StoreLimits(max_size=10, ttl=60)))
    with pytest.raises(StoreUnavailable):
        await _service(store).complete(_prepared([_token("a"), FinishEvent("resp_1", "stop", 1, 1)]))
    p = _prepared([_token("a"), FinishEvent("resp_1", "stop", 1, 1)])
    seen = []
    with pytest.raises(StoreUnavailable):
        async for event in _service(store).stream(p):
            seen.append(event.type)
    assert "response.output_text.delta" in seen and "response.completed" not in seen
    assert closed(p.generation)
