"""Keeping Python's cyclic garbage collector off the objects the HTTP process builds once and keeps.

The HTTP process imports torch and transformers (through the tokenizer and processor code) and keeps each
model's tokenizer: about 420,000 long-lived objects, and one full collection of them takes ~270 ms on the
machine of bench/README.md. Serving allocates steadily (chunks, events, span records), and every so often
the collector walks all of them again. ``freeze_heap`` collects what is garbage now, then moves everything
still alive into the permanent generation (``gc.freeze``), which collections skip; objects made afterwards
are collected as usual. The registry calls it once a model is loaded or unloaded: unfreezing first lets
what only an unloaded model held be collected.
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
