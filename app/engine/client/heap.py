"""Keeping Python's cyclic garbage collector off the objects the HTTP process builds once and keeps.

The HTTP process imports torch and transformers (through the tokenizer and processor code) and keeps each
model's tokenizer: about 420,000 long-lived objects, and one full collection of them takes ~270 ms on the
machine of bench/README.md. Serving allocates steadily (chunks, events, span records), and every so often
the collector walks all of them again. ``freeze_heap`` collects what is garbage now, then moves everything
still alive into the permanent generation (``gc.freeze``), which collections skip; objects made afterwards
are collected as usual. The registry calls it once a model is loaded or unloaded: unfreezing first lets
what only an unloaded model held be collected.

``return_large_blocks`` keeps the C allocator from holding on to large request bodies: glibc raises its
mmap threshold each time a large block is freed, up to 32 MiB, after which a 30 MB prompt's body, string
and rendered copies come from the heap and stay in the process (measured: +90 MiB of resident memory
after a few such prompts). A fixed 1 MiB threshold gives every block past it back to the system on free.
"""

from __future__ import annotations

import ctypes
import ctypes.util
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


_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (glibc malloc.h)


def return_large_blocks(threshold: int = 1 << 20) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes (see the module docstring); False where the C
    library is not glibc, which is left as it is."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))
