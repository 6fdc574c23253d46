"""A checkpoint laid out for sentence-transformers, read as plain JSON (no sentence-transformers import).

``modules.json`` lists the pipeline: a Transformer, then a ``Pooling`` module (``1_Pooling/config.json``
names its mode), optionally ``Normalize``; ``sentence_bert_config.json`` caps the sequence length. Modules
this server cannot run (``Dense``, ``LayerNorm``, ...) and pooling modes it does not implement make the
load fail with a message naming them, rather than embeddings that differ from the model's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POOLING_MODES = ("cls", "mean", "max", "lasttoken")
_MODE_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_lasttoken": "lasttoken",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
}
_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"


class LayoutError(ValueError):
    """The checkpoint's sentence-transformers pipeline holds something this server cannot run."""


@dataclass(frozen=True, slots=True)
class PoolingLayout:
    """How token states become one embedding."""

    mode: str  # one of POOLING_MODES
    normalize: bool
    max_seq_length: int | None = None  # sentence_bert_config.json's cap, when it sets one


def _read(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def has_layout(folder: str | Path) -> bool:
    """Whether ``folder`` holds a sentence-transformers pipeline with a pooling module."""
    try:
        modules = _read(Path(folder) / "modules.json")
    except (OSError, ValueError):
        return False
    return isinstance(modules, list) and any(
        isinstance(m, dict) and str(m.get("type", "")).endswith("Pooling") for m in modules
    )


def _pooling_mode(config: dict[str, Any]) -> str:
    if isinstance(config.get("pooling_mode"), str):
        chosen = [config["pooling_mode"].replace("_token", "").replace("_tokens", "")]
    else:
        chosen = [mode for key, mode in _MODE_KEYS.items() if config.get(key)]
    if len(chosen) != 1 or chosen[0] not in POOLING_MODES:
        raise LayoutError(f"pooling {'+'.join(chosen) or 'none'} is not supported (one of {', '.join(POOLING_MODES)})")
    return chosen[0]


def read_layout(folder: str | Path) -> PoolingLayout | None:
    """The pooling of a sentence-transformers checkpoint; None when ``folder`` is not laid out for it."""
    root = Path(folder)
    if not has_layout(root):
        return None
    mode, normalize = "", False
    for module in _read(root / "modules.json"):
        kind = str(module.get("type", ""))
        if kind == _POOLING or kind.endswith(".Pooling"):
            mode = _pooling_mode(_read(root / str(module.get("path", "")) / "config.json"))
        elif kind == _NORMALIZE or kind.endswith(".Normalize"):
            normalize = True
        elif kind != _TRANSFORMER and not kind.endswith(".Transformer"):
            raise LayoutError(f"the sentence-transformers module {kind.rsplit('.', 1)[-1]} is not supported")
    try:
        length = _read(root / "sentence_bert_config.json").get("max_seq_length")
    except (OSError, ValueError):
        length = None
    return PoolingLayout(mode, normalize, int(length) if isinstance(length, int) and length > 0 else None)
