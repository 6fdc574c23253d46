"""Loading a text model: processor → config → download → weights, reporting each stage.

Runs on a worker thread (it blocks on disk, network and torch); the caller turns the progress
callback into ``/load_model`` events.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import torch
from huggingface_hub import HfApi, constants, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from transformers import AutoConfig, AutoTokenizer, BitsAndBytesConfig
from transformers.utils import logging as transformers_logging

from app.engine.admission import BatchLimits
from app.engine.architectures import generative_task
from app.engine.processors import SERVED_TASKS, load_frontend, model_class
from app.engine.progress import ProgressFn, bar_class, weights_progress
from app.engine.remote import RemoteEngine
from app.engine.renderer import ChatRenderer
from app.engine.types import ModelInfo, PromptRenderer, ServingModel
from app.errors import InvalidRequest, ModelLoadFailed, ModelNotFound

log = structlog.get_logger(__name__)

# transformers logs through the root logger (app.observability.logging's pipeline), not a handler of its own;
# both processes that load models import this module.
transformers_logging.disable_default_handler()
transformers_logging.enable_propagation()

DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken", "*.py"]
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
_GENERATION_KEYS = ("do_sample", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_new_tokens")
_UNBOUNDED = 10**7  # tokenizers say model_max_length=1e30 when they do not know


@dataclass(frozen=True, slots=True)
class LoadOptions:
    dtype: str = "auto"
    device: str = "auto"
    attn_implementation: str | None = None
    quantization: str | None = None
    trust_remote_code: bool = False
    max_model_len: int | None = None
    cpu_threads: int | None = None  # None: all cores but one, leaving one to the HTTP side
    log_setup: Callable[[], None] | None = None  # run first in the engine process (picklable)
    trace_steps: bool = False  # the engine process records what each step did (tracing is on)
    limits: BatchLimits = field(default_factory=BatchLimits)


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


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _set_cpu_threads(requested: int | None) -> None:
    """On CPU the inference thread shares the machine with the HTTP event loop; a torch thread pool as
    wide as the machine makes them fight for every core (measured in bench/README.md)."""
    torch.set_num_threads(requested or max(1, (os.cpu_count() or 2) - 1))


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


def _max_context(config: Any, tokenizer: Any, limit: int | None) -> int:
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    length = getattr(text_config, "max_position_embeddings", None)
    if not length:
        tok_len = getattr(tokenizer, "model_max_length", None)
        length = tok_len if tok_len and tok_len < _UNBOUNDED else 2048
    return min(length, limit) if limit else int(length)


def _weights_kwargs(opts: LoadOptions, device: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"dtype": opts.dtype, "trust_remote_code": opts.trust_remote_code}
    if opts.attn_implementation:
        kwargs["attn_implementation"] = opts.attn_implementation
    if opts.quantization == "bnb-4bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")
    elif opts.quantization == "bnb-8bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
    if opts.quantization or device.startswith("cuda"):
        kwargs["device_map"] = device
    return kwargs


def _generation_defaults(model: Any) -> dict[str, Any]:
    config = getattr(model, "generation_config", None)
    diff = config.to_diff_dict() if config is not None else {}
    return {key: diff[key] for key in _GENERATION_KEYS if diff.get(key) is not None}


def _eos_ids(model: Any, tokenizer: Any) -> tuple[int, ...]:
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is not None:
        ids.update([configured] if isinstance(configured, int) else configured)
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return tuple(sorted(ids))


def load_model(name: str, source: str, revision: str | None, opts: LoadOptions, progress: ProgressFn) -> LoadedModel:
    """Load ``source`` (a Hub repo id at ``revision``, or a local directory when revision is None).

    The processor, config and download stages run here (the tokenizer stays in this process for
    templating); the weights stage runs in the engine process, which keeps the model.
    """
    local = revision is None
    if local and not (Path(source) / "config.json").is_file():
        raise ModelNotFound(name, "The directory holds no model (no config.json).")
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
        task = generative_task(getattr(config, "architectures", None), getattr(config, "model_type", None))
        if task not in SERVED_TASKS:
            what = f"a {task} model" if task else "not a generative model"
            raise InvalidRequest(f"`{name}` is {what}; this server does not serve it.", param="model")
        renderer, media_fields = load_frontend(where, common, task, tokenizer, config)
        if folder is None:
            progress("download", 0, None)
            download_bar = bar_class("download", progress)
            folder = snapshot_download(
                source, revision=revision, allow_patterns=DOWNLOAD_PATTERNS, tqdm_class=download_bar
            )
    except (InvalidRequest, ModelNotFound, ModelLoadFailed):
        raise
    except (OSError, ValueError, ImportError, RuntimeError) as exc:
        raise ModelLoadFailed(f"Could not load `{name}`: {exc}") from exc
    engine = RemoteEngine.spawn(folder, name, opts, progress, opts.log_setup)
    engine.info = dataclasses.replace(engine.info, **media_fields)
    return LoadedModel(tokenizer, engine.info, engine, renderer)


def load_weights(folder: str, name: str, opts: LoadOptions, progress: ProgressFn) -> tuple[Any, Any, ModelInfo]:
    """In the engine process: the model on its device, its tokenizer (for detokenizing) and what serving
    needs to know about it."""
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=opts.trust_remote_code)
    config = AutoConfig.from_pretrained(folder, trust_remote_code=opts.trust_remote_code)
    device = _resolve_device(opts.device)
    if device == "cpu":
        _set_cpu_threads(opts.cpu_threads)
    kwargs = _weights_kwargs(opts, device)
    task = generative_task(getattr(config, "architectures", None), getattr(config, "model_type", None))
    with weights_progress(progress):
        model = model_class(task or "text-generation").from_pretrained(folder, **kwargs)
    if "device_map" not in kwargs:
        model.to(device)
    model.eval()
    info = ModelInfo(
        name=name,
        max_context=_max_context(config, tokenizer, opts.max_model_len),
        eos_token_ids=_eos_ids(model, tokenizer),
        generation_defaults=_generation_defaults(model),
        vocab_size=int(model.get_output_embeddings().weight.shape[0]),
        model_type=str(getattr(config, "model_type", "") or ""),
        added_tokens=dict(tokenizer.get_added_vocab()),
        special_tokens=frozenset(t.content for t in tokenizer.added_tokens_decoder.values() if t.special),
        chat_template=template if isinstance(template := getattr(tokenizer, "chat_template", None), str) else "",
        task=task or "text-generation",
    )
    log.info("model_loaded", model=name, device=str(model.device), dtype=str(model.dtype), max_context=info.max_context)
    return model, tokenizer, info
