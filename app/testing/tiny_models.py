"""Tiny offline models for tests and the server's demo mode.

Everything is built locally in seconds (no Hub access) and installed into a Hugging Face
cache so that ``from_pretrained("hfserve/tiny-chat")`` works with ``HF_HUB_OFFLINE=1``:

* :data:`CHAT_MODEL_ID`: a ~0.1 M parameter Qwen3 trained for a few seconds on
  :data:`CANNED_CHATS`; greedy decoding reproduces each canned completion exactly
  (plain answer, ``<think>`` reasoning, or a ``<tool_call>``) and then emits ``<|im_end|>``.
* :data:`NEVER_EOS_MODEL_ID`: untrained Qwen3 that can never emit EOS (see
  :func:`build_never_eos_model`), so every request generates exactly ``max_tokens``.
* :data:`ENCODER_MODEL_ID`: a tiny ``DistilBertModel`` (not generative), for model filtering.

The media models (:mod:`app.testing.media_models`) and one tool-calling model per other tool-call
format (:mod:`app.testing.tool_models`) are built and cached the same way; ``hfserve demo`` installs
only tiny-chat.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from app.testing.canned_chats import CANNED_CHATS, render_completion
from app.testing.hf_cache import hub_cache_dir, install_in_hf_cache, install_into_hub, read_hub_ref, repo_dir
from app.testing.media_models import MEDIA_BUILDERS
from app.testing.tokenizer import SPECIAL_TOKENS, TEXT_ADDED_TOKENS, build_tokenizer
from app.testing.tool_models import TOOL_BUILDERS
from app.testing.training import (
    RECIPE_FILE,
    fit_canned_chats,
    init_weights,
    padded,
    qwen3_model,
    save_model,
    seeded,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = [
    "CANNED_CHATS",
    "CHAT_MODEL_ID",
    "ENCODER_MODEL_ID",
    "NEVER_EOS_MODEL_ID",
    "build_chat_model",
    "build_encoder_model",
    "build_never_eos_model",
    "build_tokenizer",
    "ensure_demo_models",
    "install_in_hf_cache",
    "render_completion",
]

log = logging.getLogger(__name__)

CHAT_MODEL_ID = "hfserve/tiny-chat"
NEVER_EOS_MODEL_ID = "hfserve/tiny-never-eos"
ENCODER_MODEL_ID = "hfserve/tiny-encoder"

_RECIPE_SOURCES = (
    "canned_chats.py",
    "chat_template.py",
    "tokenizer.py",
    "training.py",
    "tiny_models.py",
    "media_models.py",
    "tool_chats.py",
    "tool_templates.py",
    "tool_models.py",
)
_BAN_LOGIT = 1000.0


def recipe_hash() -> str:
    """Fingerprint of the builder sources and library versions; stale cached models are rebuilt."""
    digest = hashlib.sha256()
    for name in _RECIPE_SOURCES:
        digest.update((Path(__file__).parent / name).read_bytes())
    for dist in ("torch", "transformers", "tokenizers"):
        digest.update(importlib.metadata.version(dist).encode() + b"\0")
    return digest.hexdigest()[:16]


def build_chat_model(out_dir: Path, *, steps: int = 180, seed: int = 0, lr: float = 5e-3) -> Path:
    """Train the tiny Qwen3 chat model on :data:`CANNED_CHATS` and save it (with tokenizer);
    see :func:`app.testing.training.fit_canned_chats`."""
    out_dir = Path(out_dir)
    tok = build_tokenizer(out_dir)
    with seeded(seed) as gen:
        model = qwen3_model(padded(len(tok)), tie=True, eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)
        init_weights(model, gen)
        fit = fit_canned_chats(model, tok, CANNED_CHATS, steps=steps, lr=lr, label="tiny chat model")
    return save_model(model, out_dir, {"kind": "chat", "seed": seed, **fit})


def _banned_token_ids(tok: PreTrainedTokenizerFast, vocab_size: int) -> list[int]:
    """Ids the never-EOS model must not emit: added/special tokens, embedding padding rows and
    tokens that do not decode to printable text on their own (partial UTF-8, control bytes)."""
    n = len(tok)
    added = set(tok.convert_tokens_to_ids([*SPECIAL_TOKENS, *TEXT_ADDED_TOKENS]))
    texts = {i: tok.decode([i]) for i in range(n)}
    bad_text = {i for i, t in texts.items() if not t or "\ufffd" in t or not t.replace("\n", "").isprintable()}
    return sorted(added | bad_text | set(range(n, vocab_size)))


def build_never_eos_model(out_dir: Path, *, seed: int = 0) -> Path:
    """Untrained Qwen3 that never generates a banned token (see :func:`_banned_token_ids`:
    EOS, every other special/added token, padding rows, partial UTF-8 / control bytes).

    Trick (untied embeddings): residual channel 0 is a constant. Every token embedding has
    ``x[0] = 1`` and no attention/MLP block writes to channel 0 (row 0 of each ``o_proj`` and
    ``down_proj`` is zero), so after the final RMSNorm ``h[0] = 1 / rms(x) > 0`` for any input.
    Banned lm_head rows are ``-_BAN_LOGIT * e0`` (logit ``-1000 * h[0] < 0``), allowed rows
    have ``row[0] = 0`` and include a pair ``r, -r`` (so the best allowed logit is ``>= 0``).
    Greedy decoding therefore never picks a banned token, and with ``h[0] ~ 1`` their
    probability under sampling is ~``exp(-1000)``: every request runs to ``max_tokens``.
    """
    import torch

    out_dir = Path(out_dir)
    tok = build_tokenizer(out_dir)
    vocab_size = padded(len(tok))
    banned = _banned_token_ids(tok, vocab_size)
    allowed = sorted(set(range(vocab_size)) - set(banned))
    with seeded(seed) as gen:
        model = qwen3_model(vocab_size, tie=False, eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)
        init_weights(model, gen)
        with torch.no_grad():
            emb = model.get_input_embeddings().weight
            emb.normal_(0.0, 1.0, generator=gen)
            emb[:, 0] = 1.0
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight[0].zero_()
                layer.mlp.down_proj.weight[0].zero_()
            head = model.get_output_embeddings().weight
            head.normal_(0.0, 0.5, generator=gen)
            head[:, 0] = 0.0
            head[allowed[1]] = -head[allowed[0]]
            head[banned] = 0.0
            head[banned, 0] = -_BAN_LOGIT
    return save_model(model, out_dir, {"kind": "never-eos", "seed": seed})


def build_encoder_model(out_dir: Path, *, seed: int = 0) -> Path:
    """Tiny random ``DistilBertModel`` plus tokenizer (no chat template).

    DistilBERT rather than BERT: ``bert`` is also a key of transformers' causal-LM auto
    mapping (``BertLMHeadModel``), so only DistilBERT is non-generative by ``model_type``
    *and* by ``architectures``, whichever a filter looks at.
    """
    from transformers import DistilBertConfig, DistilBertModel

    out_dir = Path(out_dir)
    tok = build_tokenizer(out_dir, model_max_length=512, chat_template=False)
    config = DistilBertConfig(
        vocab_size=padded(len(tok)),
        dim=32,
        n_layers=2,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
    )
    with seeded(seed) as gen:
        model = DistilBertModel(config)
        init_weights(model, gen)
    return save_model(model, out_dir, {"kind": "encoder", "seed": seed})


BUILDERS: dict[str, Callable[[Path], Path]] = {
    CHAT_MODEL_ID: build_chat_model,
    NEVER_EOS_MODEL_ID: build_never_eos_model,
    ENCODER_MODEL_ID: build_encoder_model,
    **MEDIA_BUILDERS,
    **TOOL_BUILDERS,
}


def _is_current(hub_dir: Path, repo_id: str) -> bool:
    sha = read_hub_ref(hub_dir, repo_id)
    if sha is None:
        return False
    snapshot = repo_dir(hub_dir, repo_id) / "snapshots" / sha
    try:
        meta = json.loads((snapshot / RECIPE_FILE).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("recipe") == recipe_hash() and (snapshot / "config.json").is_file()


def _stamp(folder: Path) -> Path:
    """Record the recipe hash in the model's recipe file (created for builders that write none)."""
    path = folder / RECIPE_FILE
    meta = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**meta, "recipe": recipe_hash()}, indent=2, sort_keys=True) + "\n")
    return folder


def ensure_demo_models(hf_home: Path | None = None, *, which: Iterable[str] = (CHAT_MODEL_ID,)) -> list[str]:
    """Build and install the requested tiny models unless an up-to-date copy is cached.

    ``hf_home=None`` uses the active hub cache (``huggingface_hub.constants.HF_HUB_CACHE``,
    i.e. ``$HF_HUB_CACHE`` or ``$HF_HOME/hub``). Builds run in a temporary folder under a
    per-repo file lock, then are installed atomically. Returns the repo ids (re)built now.
    """
    from filelock import FileLock

    if hf_home is None:
        from huggingface_hub import constants

        hub_dir = Path(constants.HF_HUB_CACHE)
    else:
        hub_dir = hub_cache_dir(Path(hf_home))
    wanted = list(dict.fromkeys([which] if isinstance(which, str) else which))
    unknown = [repo for repo in wanted if repo not in BUILDERS]
    if unknown:
        raise ValueError(f"unknown demo model(s) {unknown}; known: {sorted(BUILDERS)}")
    (hub_dir / ".locks").mkdir(parents=True, exist_ok=True)
    installed = []
    for repo_id in wanted:
        with FileLock(str(hub_dir / ".locks" / f"hfserve-{repo_id.replace('/', '--')}.lock")):
            if _is_current(hub_dir, repo_id):
                continue
            start = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="hfserve-tiny-") as tmp:
                sha = install_into_hub(_stamp(BUILDERS[repo_id](Path(tmp) / "model")), hub_dir, repo_id)
            log.info("built %s@%s in %.1fs", repo_id, sha[:8], time.perf_counter() - start)
            installed.append(repo_id)
    return installed
