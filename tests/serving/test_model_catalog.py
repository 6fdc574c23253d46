"""``/v1/models`` and ``/load_model`` as the service builds them from the HF cache and the registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import constants

from app.engine.options import LoadOptions
from app.errors import ModelNotAllowed, ModelNotFound
from app.models.registry import ModelRegistry
from app.serving.model_catalog import ModelCatalogService
from tests.support.models import CHAT_MODEL_ID, ENCODER_MODEL_ID, NEVER_EOS_MODEL_ID, UNSERVED_MODEL_ID, snapshot_path


@pytest.fixture
def hub(hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny-model cache as the cache every listing reads."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    return hf_home / "hub"


async def test_unpinned_lists_the_cached_served_models_by_owner_with_their_task(hub: Path) -> None:
    listing = await ModelCatalogService(ModelRegistry(LoadOptions(), idle_timeout=-1)).list_models()
    ids = [card.id for card in listing.data]
    assert ids == sorted(ids)
    assert {CHAT_MODEL_ID, NEVER_EOS_MODEL_ID, ENCODER_MODEL_ID} <= set(ids) and UNSERVED_MODEL_ID not in ids
    tasks = {card.id: card.task for card in listing.data}
    assert tasks[CHAT_MODEL_ID] == "text-generation" and tasks[ENCODER_MODEL_ID] == "embed"
    card = next(card for card in listing.data if card.id == CHAT_MODEL_ID)
    assert card.owned_by == CHAT_MODEL_ID.split("/")[0] and card.created > 0


@pytest.mark.parametrize(
    ("pinned", "shown", "owner"),
    [
        ("org/name", "org/name", "org"),
        ("org/name@main", "org/name", "org"),
        ("org/name@v2", "org/name@v2", "org"),
        ("gpt2", "gpt2", "local"),
    ],
)
async def test_pinned_lists_only_the_pinned_model(hub: Path, pinned: str, shown: str, owner: str) -> None:
    registry = ModelRegistry(LoadOptions(), idle_timeout=-1, pinned=pinned)  # not started: nothing loads
    listing = await ModelCatalogService(registry).list_models()
    assert [(card.id, card.owned_by) for card in listing.data] == [(shown, owner)]


def test_a_bad_name_fails_before_any_event() -> None:
    service = ModelCatalogService(ModelRegistry(LoadOptions(), idle_timeout=-1))
    with pytest.raises(ModelNotFound):
        service.load_events("not a model!")
    pinned = ModelCatalogService(ModelRegistry(LoadOptions(), idle_timeout=-1, pinned="org/name"))
    with pytest.raises(ModelNotAllowed):
        pinned.load_events("org/other")


async def test_loading_a_local_model_streams_progress_then_lists_it(hub: Path) -> None:
    local = str(snapshot_path(hub.parent, NEVER_EOS_MODEL_ID))
    registry = ModelRegistry(LoadOptions(), idle_timeout=-1, allowed_local_paths=[str(Path(local).parent)])
    await registry.start()
    service = ModelCatalogService(registry)
    try:
        events = [event async for event in service.load_events(local)]
        assert events[-1].status == "ready" and events[-1].model == local and events[-1].cached is False
        loading = [event for event in events if event.status == "loading"]
        assert loading and all(event.stage is not None for event in loading)
        assert all(e.progress is None or 0 <= e.progress.current <= e.progress.total for e in loading)
        again = [event async for event in service.load_events(local)]
        assert [(event.status, event.cached) for event in again] == [("ready", True)]
        cards = {card.id: card for card in (await service.list_models()).data}
        assert cards[local].owned_by == "local"  # loaded, though not in the cache
        assert CHAT_MODEL_ID in cards
    finally:
        await registry.close()


def test_a_local_model_outside_the_allowed_paths_cannot_be_loaded(hub: Path) -> None:
    local = str(snapshot_path(hub.parent, NEVER_EOS_MODEL_ID))
    service = ModelCatalogService(ModelRegistry(LoadOptions(), idle_timeout=-1))
    with pytest.raises(ModelNotFound) as caught:
        service.load_events(local)
    assert caught.value.message == f"The model `{local}` does not exist or is not available on this server."
