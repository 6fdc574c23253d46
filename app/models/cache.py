"""What the local Hugging Face cache holds, read fresh on every call (sees later downloads)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import constants

from app.engine.architectures import generative_task


@dataclass(frozen=True, slots=True)
class CachedModel:
    repo_id: str
    revision: str  # the ref name (``main``) the snapshot is reachable by
    task: str | None
    created: int  # snapshot modification time, seconds

    @property
    def model_id(self) -> str:
        return self.repo_id if self.revision == "main" else f"{self.repo_id}@{self.revision}"


def _read_config(snapshot: Path) -> dict[str, object] | None:
    try:
        return json.loads((snapshot / "config.json").read_text())
    except (OSError, ValueError):
        return None


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
            task = generative_task(config.get("architectures"), config.get("model_type"))  # type: ignore[arg-type]
            revision = ref.relative_to(refs).as_posix()
            found.append(CachedModel(repo_id, revision, task, int(snapshot.stat().st_mtime)))
    return found


def generative_models(hub_dir: Path | None = None) -> list[CachedModel]:
    return [m for m in scan_cache(hub_dir) if m.task is not None]
