"""``/v1/models`` and ``/load_model``: the cache listing and load progress as wire objects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

from app.errors import ModelNotFound
from app.models.cache import local_task, served_models
from app.models.registry import LoadUpdate, ModelRegistry
from app.protocol.model_catalog import LoadModelEvent, LoadProgress, ModelCard, ModelList


def _card(model_id: str, created: int, task: str | None) -> ModelCard:
    owner = model_id.split("/", 1)[0] if "/" in model_id and not model_id.startswith("/") else "local"
    return ModelCard(id=model_id, created=created, owned_by=owner, task=task)


def _event(update: LoadUpdate) -> LoadModelEvent:
    progress = LoadProgress(current=update.current, total=update.total) if update.has_progress else None
    return LoadModelEvent(
        status=update.status,  # type: ignore[arg-type]
        model=update.model,
        stage=update.stage,  # type: ignore[arg-type]
        progress=progress,
        cached=update.cached,
        message=update.message,
    )


def _task_of(source: str, revision: str | None) -> str | None:
    """The task of a model that may not be loaded yet: from its directory, or its cached snapshot."""
    if revision is None:
        return local_task(Path(source))
    wanted = source if revision == "main" else f"{source}@{revision}"
    return next((m.task for m in served_models() if m.model_id == wanted), None)


class ModelCatalogService:
    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry

    async def list_models(self) -> ModelList:
        """Served models in the HF cache (read fresh), plus loaded ones, each with its task; only the pinned one
        when pinned."""
        pinned = self._registry.pinned
        now = int(time.time())
        loaded = self._registry.loaded_tasks()
        if pinned is not None:
            shown = pinned.source if pinned.revision in (None, "main") else pinned.name
            task = loaded.get(pinned.name) or await asyncio.to_thread(_task_of, pinned.source, pinned.revision)
            return ModelList(data=[_card(shown, now, task)])
        cached = await asyncio.to_thread(served_models)
        cards = {m.model_id: _card(m.model_id, m.created, m.task) for m in cached}
        for name in self._registry.loaded_names():
            shown = name.removesuffix("@main")
            cards.setdefault(shown, _card(shown, now, loaded.get(name)))
        return ModelList(data=sorted(cards.values(), key=lambda card: card.id))

    async def get_model(self, model_id: str) -> ModelCard:
        """One model as ``/v1/models`` lists it (with or without ``@main``); ``ModelNotFound`` otherwise."""
        wanted = model_id.removesuffix("@main")
        listing = await self.list_models()
        card = next((card for card in listing.data if card.id == wanted), None)
        if card is None:
            raise ModelNotFound(model_id)
        return card

    def load_events(self, model: str) -> AsyncIterator[LoadModelEvent]:
        """Resolves ``model`` now (so a bad name fails before the stream starts), then streams progress."""
        updates = self._registry.load_updates(self._registry.resolve(model))
        return (_event(update) async for update in updates)
