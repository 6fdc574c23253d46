"""Loading the tiny test models straight from a hub cache folder (no HF_HOME needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fixtures.tiny_models import CHAT_MODEL_ID, ENCODER_MODEL_ID, NEVER_EOS_MODEL_ID, UNSERVED_MODEL_ID

__all__ = [
    "CHAT_MODEL_ID",
    "ENCODER_MODEL_ID",
    "NEVER_EOS_MODEL_ID",
    "UNSERVED_MODEL_ID",
    "clone_hf_home",
    "load_model_and_tokenizer",
    "load_tokenizer",
    "snapshot_path",
]


def snapshot_path(hf_home: Path, repo_id: str, ref: str = "main") -> Path:
    """The snapshot folder ``repo_id`` at ``ref`` resolves to inside ``<hf_home>/hub``."""
    repo = Path(hf_home) / "hub" / ("models--" + repo_id.replace("/", "--"))
    sha = (repo / "refs" / ref).read_text().strip()
    return repo / "snapshots" / sha


def clone_hf_home(source: Path, dest: Path) -> Path:
    """A private copy of ``source``'s hub cache at ``dest`` (links kept, as in a real cache)."""
    import shutil

    shutil.copytree(Path(source) / "hub", Path(dest) / "hub", symlinks=True)
    return Path(dest)


def load_model_and_tokenizer(hf_home: Path, repo_id: str) -> tuple[Any, Any]:
    """The causal LM (eval mode, CPU, float32) and its tokenizer, loaded from the snapshot folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = snapshot_path(hf_home, repo_id)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype="float32")
    model.eval()
    return model, tokenizer


def load_tokenizer(hf_home: Path, repo_id: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(snapshot_path(hf_home, repo_id)))
