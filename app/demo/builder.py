"""The bundled demo model, and installing tiny models into a Hugging Face cache offline.

``hfserve demo`` (and so ``make run``) installs :data:`CHAT_MODEL_ID`: a ~0.1 M parameter Qwen3
trained for a few seconds on :data:`~app.demo.canned_chats.CANNED_CHATS`. Greedy decoding reproduces
each canned completion exactly (a plain answer, ``<think>`` reasoning, or a ``<tool_call>``) and then
emits ``<|im_end|>``. It is built locally (no Hub access) and installed into the hub cache, so that
``from_pretrained("hfserve/tiny-chat")`` works with ``HF_HUB_OFFLINE=1``.

:func:`install_models` is the installer the test fixtures use for their other tiny models too: each
build is stamped with a hash of the sources that made it, and a stale copy is rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from app.demo.canned_chats import CANNED_CHATS
from app.demo.hf_cache import hub_cache_dir, install_into_hub, read_hub_ref, repo_dir
from app.demo.tokenizer import build_tokenizer
from app.demo.training import RECIPE_FILE, fit_canned_chats, init_weights, padded, qwen3_model, save_model, seeded

log = logging.getLogger(__name__)

CHAT_MODEL_ID = "hfserve/tiny-chat"

Builder = Callable[[Path], Path]


def build_chat_model(out_dir: Path, *, steps: int = 180, seed: int = 0, lr: float = 5e-3) -> Path:
    """Train the tiny Qwen3 chat model on the canned chats and save it (with its tokenizer)."""
    out_dir = Path(out_dir)
    tok = build_tokenizer(out_dir)
    with seeded(seed) as gen:
        model = qwen3_model(padded(len(tok)), tie=True, eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)
        init_weights(model, gen)
        fit = fit_canned_chats(model, tok, CANNED_CHATS, steps=steps, lr=lr, label="tiny chat model")
    return save_model(model, out_dir, {"kind": "chat", "seed": seed, **fit})


def recipe_hash(builder: Builder) -> str:
    """Fingerprint of the sources a model is built from (this package and the builder's own folder) and of
    the library versions; a cached model with another fingerprint is rebuilt."""
    folders = dict.fromkeys([Path(__file__).parent, Path(sys.modules[builder.__module__].__file__ or "").parent])
    digest = hashlib.sha256()
    for folder in folders:
        for source in sorted(folder.glob("*.py")):
            digest.update(source.name.encode() + b"\0" + source.read_bytes())
    for dist in ("torch", "transformers", "tokenizers"):
        digest.update(importlib.metadata.version(dist).encode() + b"\0")
    return digest.hexdigest()[:16]


def _is_current(hub_dir: Path, repo_id: str, recipe: str) -> bool:
    sha = read_hub_ref(hub_dir, repo_id)
    if sha is None:
        return False
    snapshot = repo_dir(hub_dir, repo_id) / "snapshots" / sha
    try:
        meta = json.loads((snapshot / RECIPE_FILE).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("recipe") == recipe and (snapshot / "config.json").is_file()


def _stamp(folder: Path, recipe: str) -> Path:
    """Record the recipe hash in the model's recipe file (created for builders that write none)."""
    path = folder / RECIPE_FILE
    meta = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**meta, "recipe": recipe}, indent=2, sort_keys=True) + "\n")
    return folder


def hub_dir_of(hf_home: Path | None) -> Path:
    """The hub cache of ``hf_home``; ``None``: the active one (``$HF_HUB_CACHE`` or ``$HF_HOME/hub``)."""
    if hf_home is None:
        from huggingface_hub import constants

        return Path(constants.HF_HUB_CACHE)
    return hub_cache_dir(Path(hf_home))


def install_models(builders: Mapping[str, Builder], hf_home: Path | None, which: Iterable[str]) -> list[str]:
    """Build and install the requested models unless an up-to-date copy is cached.

    Builds run in a temporary folder under a per-repo file lock, then are installed atomically. Returns the
    repo ids (re)built now.
    """
    from filelock import FileLock

    hub_dir = hub_dir_of(hf_home)
    wanted = list(dict.fromkeys([which] if isinstance(which, str) else which))
    unknown = [repo for repo in wanted if repo not in builders]
    if unknown:
        raise ValueError(f"unknown tiny model(s) {unknown}; known: {sorted(builders)}")
    (hub_dir / ".locks").mkdir(parents=True, exist_ok=True)
    installed = []
    for repo_id in wanted:
        recipe = recipe_hash(builders[repo_id])
        with FileLock(str(hub_dir / ".locks" / f"hfserve-{repo_id.replace('/', '--')}.lock")):
            if _is_current(hub_dir, repo_id, recipe):
                continue
            start = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="hfserve-tiny-") as tmp:
                sha = install_into_hub(_stamp(builders[repo_id](Path(tmp) / "model"), recipe), hub_dir, repo_id)
            log.info("built %s@%s in %.1fs", repo_id, sha[:8], time.perf_counter() - start)
            installed.append(repo_id)
    return installed


def ensure_demo_model(hf_home: Path | None = None) -> list[str]:
    """Install the demo chat model unless an up-to-date copy is cached; returns what was built now."""
    return install_models({CHAT_MODEL_ID: build_chat_model}, hf_home, [CHAT_MODEL_ID])
