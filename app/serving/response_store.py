"""Stored responses for ``previous_response_id`` and ``GET``/``DELETE /v1/responses/{id}``.

A response is kept with every input item that led to it, as one JSON document in the store that
``--responses-store`` names (``app/store``: memory, SQLite or Redis); this module never knows which. A store
that cannot be reached raises ``StoreUnavailable`` (503), never "not found".
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from app.protocol.response_objects import ResponseObject
from app.protocol.responses import InputItem
from app.store.base import DocumentStore, StoreUnavailable

_CONVERSATION = TypeAdapter(list[InputItem])


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response: ResponseObject
    conversation: tuple[InputItem, ...]  # every input item that led to it, earlier turns included


class ResponseStore:
    def __init__(self, documents: DocumentStore) -> None:
        self._documents = documents

    @property
    def url(self) -> str:
        return self._documents.url

    async def put(self, response: ResponseObject, conversation: list[InputItem]) -> None:
        document = {
            "response": response.model_dump(mode="json", exclude_none=True),
            "conversation": _CONVERSATION.dump_python(conversation, mode="json", exclude_none=True),
        }
        await self._documents.put(response.id, json.dumps(document, separators=(",", ":")).encode())

    async def get(self, response_id: str) -> StoredResponse | None:
        raw = await self._documents.get(response_id)
        if raw is None:
            return None
        try:
            document = json.loads(raw)
            response = ResponseObject.model_validate(document["response"])
            conversation = _CONVERSATION.validate_python(document["conversation"])
        except (ValueError, KeyError, TypeError, ValidationError) as exc:  # written by an incompatible version
            raise StoreUnavailable(f"The stored response `{response_id}` cannot be read back.") from exc
        return StoredResponse(response, tuple(conversation))

    async def delete(self, response_id: str) -> bool:
        return await self._documents.delete(response_id)

    async def check(self) -> None:
        await self._documents.check()

    async def close(self) -> None:
        await self._documents.close()
