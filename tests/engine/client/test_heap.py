"""The collector is kept off long-lived objects, and garbage is still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from app.engine.client.heap import freeze_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # leave the test process as it was


def test_freezing_collects_garbage_first_and_hides_survivors_from_collections() -> None:
    garbage, kept = Node(), Node()
    dead = weakref.ref(garbage)
    del garbage
    freeze_heap("test")
    assert dead() is None  # collected before the freeze, not frozen forever
    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert not gc.is_finalized(kept) and kept.me is kept

    later = Node()  # made after the freeze: collected as usual
    gone = weakref.ref(later)
    del later
    gc.collect()
    assert gone() is None and gc.get_freeze_count() == frozen


def test_a_freeze_after_an_unload_frees_what_only_the_unloaded_model_held() -> None:
    model = Node()
    gone = weakref.ref(model)
    freeze_heap("model_loaded")  # the model is frozen with everything else
    del model
    gc.collect()
    assert gone() is not None  # frozen objects are skipped by collections
    freeze_heap("model_unloaded")
    assert gone() is None
