"""Keeping Python's cyclic garbage collector off the objects a process builds once and keeps.

Both kinds of process hold hundreds of thousands of long-lived objects (torch and transformers, a model's
modules, a tokenizer): about 420,000 in the HTTP process, where one full collection takes ~270 ms on the
machine of bench/README.md. Serving allocates steadily (events, chunks, span records), and every so often
the collector walks all of them again. ``freeze_heap`` collects what is garbage now, then moves everything
still alive into the permanent generation (``gc.freeze``), which collections skip; objects made afterwards
are collected as usual. Called once a model is loaded or unloaded: unfreezing first lets a model that went
away be collected.
"""

from __future__ import annotations

import gc
import time

import structlog

log = structlog.get_logger(__name__)


def freeze_heap(reason: str) -> None:
    started = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    ms = round((time.perf_counter() - started) * 1e3)
    log.debug("heap_frozen", reason=reason, objects=gc.get_freeze_count(), ms=ms)
