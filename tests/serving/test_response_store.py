"""The bounded, expiring response store."""

from __future__ import annotations

from app.protocol.response_objects import ResponseObject
from app.protocol.responses import MessageItem
from app.serving.response_store import ResponseStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _response(i: int) -> ResponseObject:
    return ResponseObject(id=f"resp_{i}", created_at=0, status="completed", model="m@main")


def test_oldest_are_evicted_past_the_size() -> None:
    store = ResponseStore(2, 60)
    for i in range(3):
        store.put(_response(i), [MessageItem(role="user", content=str(i))])
    assert store.get("resp_0") is None and len(store) == 2
    stored = store.get("resp_2")
    assert stored is not None and stored.conversation[0].content == "2"


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    store = ResponseStore(10, 5.0, clock=clock)
    store.put(_response(1), [])
    clock.now = 4.0
    store.put(_response(2), [])
    assert store.get("resp_1") is not None
    clock.now = 5.5
    assert store.get("resp_1") is None and store.get("resp_2") is not None
    clock.now = 9.5
    assert store.get("resp_2") is None and len(store) == 0


def test_size_zero_stores_nothing_and_delete() -> None:
    assert ResponseStore(0, 60).get("resp_1") is None
    empty = ResponseStore(0, 60)
    empty.put(_response(1), [])
    assert len(empty) == 0
    store = ResponseStore(3, 60)
    store.put(_response(1), [])
    assert store.delete("resp_1") and not store.delete("resp_1")
