"""Routes transformers' and huggingface_hub's progress bars to a load's progress callback, and
transformers' logs to the root logger. Both processes that load a model (its tokenizer and processor here,
its weights in the engine process) import this module.

transformers draws its "Loading weights" bar through ``transformers.utils.logging.tqdm``, which
accepts one global hook. The hook installed here forwards each bar to the callback registered by the
thread that created it, so concurrent loads of different models never see each other's progress.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from huggingface_hub.utils import tqdm as hf_tqdm
from transformers.utils import logging as hf_logging

from app.engine.options import ProgressFn

# transformers logs through the root logger (app.observability.logging's pipeline), not a handler of its own.
hf_logging.disable_default_handler()
hf_logging.enable_propagation()

_local = threading.local()
_install_lock = threading.Lock()
_installed = False
# snapshot_download's bar counting bytes written to the cache (the other one counts network bytes).
_SNAPSHOT_BAR = "huggingface_hub.snapshot_download"


class _StageTqdm(hf_tqdm):
    """A silent bar that reports its position as ``stage`` progress."""

    stage = "weights"
    callback: ProgressFn

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Download: only the bytes-written bar of snapshot_download; weights: every bar.
        self._report = self.stage != "download" or kwargs.get("name") == _SNAPSHOT_BAR
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)
        self._emit()

    def update(self, n: float | None = 1) -> bool | None:
        self.n += n or 0
        self._emit()
        return None

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable:
            self.n += 1
            self._emit()
            yield item

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        self._emit()

    def _emit(self) -> None:
        if self._report:
            total = int(self.total) if self.total else None
            type(self).callback(self.stage, int(self.n), total)


def _hook(factory: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    bar_class = getattr(_local, "bar_class", None)
    if bar_class is None:
        return factory(*args, **kwargs)
    return bar_class(*args, **kwargs)


def _ensure_hook() -> None:
    global _installed
    with _install_lock:
        if not _installed:
            hf_logging.set_tqdm_hook(_hook)
            _installed = True


def bar_class(stage: str, callback: ProgressFn) -> type[hf_tqdm]:
    """A tqdm class whose bars report ``stage`` progress to ``callback`` (for ``tqdm_class=``)."""
    return type(f"{stage.title()}Progress", (_StageTqdm,), {"stage": stage, "callback": staticmethod(callback)})


@contextmanager
def weights_progress(callback: ProgressFn) -> Iterator[None]:
    """Within this block, transformers' bars on this thread report ``weights`` progress."""
    _ensure_hook()
    _local.bar_class = bar_class("weights", callback)
    try:
        yield
    finally:
        _local.bar_class = None
