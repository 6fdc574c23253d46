"""Stored responses for ``previous_response_id`` and ``GET /v1/responses/{id}``.

Kept in this process's memory, bounded by count and age: a restart or another replica does not see
them (the README says so).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from app.protocol.response_objects import ResponseObject
from app.protocol.responses import InputItem


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response: ResponseObject
    conversation: tuple[InputItem, ...]  # every input item that led to it, earlier turns included
    stored_at: float


class ResponseStore:
    def __init__(self, max_size: int, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_size = max_size
        self._ttl = ttl
        self._clock = clock
        self._items: OrderedDict[str, StoredResponse] = OrderedDict()

    def put(self, response: ResponseObject, conversation: list[InputItem]) -> None:
        if self._max_size == 0:
            return
        self._expire()
        self._items[response.id] = StoredResponse(response, tuple(conversation), self._clock())
        self._items.move_to_end(response.id)
        while len(self._items) > self._max_size:
            self._items.popitem(last=False)

    def get(self, response_id: str) -> StoredResponse | None:
        self._expire()
        return self._items.get(response_id)

    def delete(self, response_id: str) -> bool:
        self._expire()
        return self._items.pop(response_id, None) is not None

    def __len__(self) -> int:
        return len(self._items)

    def _expire(self) -> None:
        deadline = self._clock() - self._ttl
        while self._items:
            oldest = next(iter(self._items.values()))
            if oldest.stored_at > deadline:
                return
            self._items.popitem(last=False)
