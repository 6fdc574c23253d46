"""Stored responses as documents: what goes in comes back, whatever the backend (here memory and SQLite;
tests/store checks every backend's limits)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.protocol.response_objects import OutputMessage, OutputText, ResponseObject
from app.protocol.responses import FunctionCallItem, FunctionCallOutputItem, MessageItem
from app.serving.response_store import ResponseStore
from app.store.base import DocumentStore, StoreLimits, StoreUnavailable
from app.store.memory import MemoryStore
from app.store.sqlite import SqliteStore

LIMITS = StoreLimits(max_size=10, ttl=60)


@pytest.fixture(params=["memory", "sqlite"])
def documents(request: pytest.FixtureRequest, tmp_path: Path) -> DocumentStore:
    return MemoryStore(LIMITS) if request.param == "memory" else SqliteStore(tmp_path / "r.sqlite3", LIMITS)


def _response() -> ResponseObject:
    message = OutputMessage(id="msg_1", status="completed", content=[OutputText(text="Sunny, 18 °C.")])
    return ResponseObject(
        id="resp_1", created_at=1, status="completed", model="m@main", output=[message], metadata={"k": "v"}
    )


async def test_a_response_and_its_conversation_come_back_equal(documents: DocumentStore) -> None:
    store = ResponseStore(documents)
    conversation = [
        MessageItem(role="user", content="Weather in Paris?"),
        FunctionCallItem(type="function_call", call_id="call_1", name="weather", arguments='{"city": "Paris"}'),
        FunctionCallOutputItem(type="function_call_output", call_id="call_1", output='{"t": 18}'),
    ]
    await store.put(_response(), conversation)
    stored = await store.get("resp_1")
    assert stored is not None
    assert stored.response == _response()
    assert list(stored.conversation) == conversation
    assert await store.delete("resp_1") and await store.get("resp_1") is None
    await store.close()


async def test_a_document_that_cannot_be_read_back_is_unavailable_not_missing() -> None:
    documents = MemoryStore(LIMITS)
    await documents.put("resp_1", b'{"response": {"id": 5}}')
    with pytest.raises(StoreUnavailable, match="cannot be read back"):
        await ResponseStore(documents).get("resp_1")
