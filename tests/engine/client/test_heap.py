"""The collector is kept off long-lived objects, and garbage is still collected."""

from __future__ import annotations

import gc
import platform
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engine.client.heap import freeze_heap, return_large_blocks


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


def _rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_large_blocks_go_back_to_the_system_once_freed() -> None:
    assert return_large_blocks() is True
    before = _rss_mib()
    for _ in range(5):  # what a 30 MB prompt makes: the body, a string of it, a copy, a joined text
        blocks = [bytes(30_000_000), "x" * 30_000_000, b"y" * 30_000_000]
        assert len(blocks) == 3
        del blocks
    assert _rss_mib() - before < 16
