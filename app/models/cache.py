"""What the local Hugging Face cache holds, read fresh on every call (sees later downloads)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import constants

from app.engine.architectures import served_task


@dataclass(frozen=True, slots=True)
class CachedModel:
    repo_id: str
    revision: str  # the ref name (``main``) the snapshot is reachable by
    task: str | None
    created: int  # snapshot modification time, seconds

    @property
    def model_id(self) -> str:
        return self.repo_id if self.revision == "main" else f"{self.repo_id}@{self.revision}"


def _read_config(snapshot: Path) -> dict[str, Any] | None:
    try:
        return json.loads((snapshot / "config.json").read_text())
    except (OSError, ValueError):
        return None


def config_task(config: dict[str, Any], folder: Path) -> str | None:
    """The task this server serves a snapshot as (see ``served_task``); None when it does not serve it."""
    labels = config.get("id2label")
    num_labels = len(labels) if isinstance(labels, dict) else config.get("num_labels", 2)
    architectures = config.get("architectures")
    model_type = config.get("model_type")
    return served_task(
        architectures if isinstance(architectures, list) else None,
        model_type if isinstance(model_type, str) else None,
        num_labels if isinstance(num_labels, int) else None,
        folder,
    )


def local_task(folder: Path) -> str | None:
    """The task of a model kept in a plain directory (None without a readable config.json)."""
    config = _read_config(folder)
    return config_task(config, folder) if config is not None else None


def scan_cache(hub_dir: Path | None = None) -> list[CachedModel]:
    """Every model repo ref in the cache whose snapshot has a readable config.json."""
    root = Path(hub_dir or constants.HF_HUB_CACHE)
    found: list[CachedModel] = []
    for repo_dir in sorted(root.glob("models--*")):
        repo_id = repo_dir.name.removeprefix("models--").replace("--", "/")
        refs = repo_dir / "refs"
        for ref in sorted(refs.rglob("*")) if refs.is_dir() else []:
            if not ref.is_file():
                continue
            snapshot = repo_dir / "snapshots" / ref.read_text().strip()
            config = _read_config(snapshot)
            if config is None:
                continue
            task = config_task(config, snapshot)
            revision = ref.relative_to(refs).as_posix()
            found.append(CachedModel(repo_id, revision, task, int(snapshot.stat().st_mtime)))
    return found


def served_models(hub_dir: Path | None = None) -> list[CachedModel]:
    """Every cached model this server serves (generative, embedding or cross-encoder)."""
    return [m for m in scan_cache(hub_dir) if m.task is not None]
