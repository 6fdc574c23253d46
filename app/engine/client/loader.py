"""Loading a model: processor → config → download here, then weights in the engine process it spawns,
reporting each stage.

Runs on a worker thread (it blocks on disk, network and the engine process's start); the caller turns the
progress callback into ``/load_model`` events.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import structlog
from huggingface_hub import HfApi, constants, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from transformers import AutoConfig, AutoTokenizer

from app.engine.architectures import EMBED, POOLING_TASKS, SERVED_TASKS, served_task
from app.engine.client.pooling import PoolingTokenizer, RemotePoolingEngine
from app.engine.client.processors import load_frontend
from app.engine.client.remote import RemoteEngine
from app.engine.client.renderer import ChatRenderer
from app.engine.options import LoadOptions, ProgressFn
from app.engine.progress import bar_class
from app.engine.sentence_transformers import has_layout
from app.engine.types import ModelInfo, PromptRenderer, ServingModel
from app.errors import InvalidRequest, ModelLoadFailed, ModelNotFound

log = structlog.get_logger(__name__)

DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken", "*.py"]
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


class LoadedModel:
    """A loaded model as this process holds it: the tokenizer and the engine process serving it."""

    def __init__(
        self, tokenizer: Any, info: ModelInfo, engine: RemoteEngine, renderer: PromptRenderer | None = None
    ) -> None:
        self.tokenizer, self.info, self.engine = tokenizer, info, engine
        self.serving = ServingModel(info=info, renderer=renderer or ChatRenderer(tokenizer), engine=engine)

    def close(self) -> None:
        """Stops the engine process, which frees the weights and the KV cache with it."""
        self.engine.shutdown()


def _cached_snapshot(repo_id: str, revision: str) -> str | None:
    """The cached snapshot folder when it holds weights, else None (no network)."""
    try:
        folder = snapshot_download(repo_id, revision=revision, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        return None
    has_weights = any(name.endswith(_WEIGHT_SUFFIXES) for name in os.listdir(folder))
    return folder if has_weights else None


def _check_exists(name: str, repo_id: str, revision: str) -> None:
    if constants.HF_HUB_OFFLINE:
        raise ModelNotFound(name, "It is not in the local cache and the Hub is offline (HF_HUB_OFFLINE=1).")
    try:
        HfApi().model_info(repo_id, revision=revision)
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise ModelNotFound(name) from exc
    except GatedRepoError as exc:
        raise ModelLoadFailed(f"`{name}` is gated: accept its terms on the Hub and set HF_TOKEN.") from exc


def _frontend(where: str, common: dict[str, Any], task: str, tokenizer: Any, config: Any) -> tuple[Any, dict]:
    """What tokenizes for the model in this process, and what ``ModelInfo`` learns from its processor."""
    if task in POOLING_TASKS:
        return PoolingTokenizer(tokenizer), {}
    return load_frontend(where, common, task, tokenizer, config)


def load_model(name: str, source: str, revision: str | None, opts: LoadOptions, progress: ProgressFn) -> LoadedModel:
    """Load ``source`` (a Hub repo id at ``revision``, or a local directory when revision is None).

    The processor, config and download stages run here (the tokenizer stays in this process for
    templating); the weights stage runs in the engine process, which keeps the model.
    """
    local = revision is None
    if local and not (Path(source) / "config.json").is_file():
        log.warning("model_directory_has_no_config", model=name)  # the client's error says no more than "not found"
        raise ModelNotFound(name)
    folder = source if local else _cached_snapshot(source, revision)
    if folder is None:
        _check_exists(name, source, revision)
    where = folder or source
    common = {"revision": None if folder else revision, "trust_remote_code": opts.trust_remote_code}
    try:
        progress("processor", None, None)
        tokenizer = AutoTokenizer.from_pretrained(where, **common)
        progress("config", None, None)
        config = AutoConfig.from_pretrained(where, **common)
        archs, model_type = getattr(config, "architectures", None), getattr(config, "model_type", None)
        task = served_task(archs, model_type, config.num_labels, folder)
        if task not in SERVED_TASKS:
            what = f"a {task} model" if task else "not a generative, embedding or cross-encoder model"
            raise InvalidRequest(f"`{name}` is {what}; this server does not serve it.", param="model")
        renderer, media_fields = _frontend(where, common, task, tokenizer, config)
        if folder is None:
            progress("download", 0, None)
            download_bar = bar_class("download", progress)
            folder = snapshot_download(
                source, revision=revision, allow_patterns=DOWNLOAD_PATTERNS, tqdm_class=download_bar
            )
            if task not in POOLING_TASKS and has_layout(folder):  # a decoder embedding model, seen once downloaded
                task, (renderer, media_fields) = EMBED, _frontend(folder, common, EMBED, tokenizer, config)
    except (InvalidRequest, ModelNotFound, ModelLoadFailed):
        raise
    except (OSError, ValueError, ImportError, RuntimeError) as exc:
        raise ModelLoadFailed(f"Could not load `{name}`: {exc}") from exc
    engine_class = RemotePoolingEngine if task in POOLING_TASKS else RemoteEngine
    engine = engine_class.spawn(folder, name, opts, progress)
    engine.info = dataclasses.replace(engine.info, **media_fields)
    if isinstance(renderer, ChatRenderer):
        renderer.bound_prompts(engine.info.max_context)
    return LoadedModel(tokenizer, engine.info, engine, renderer)
