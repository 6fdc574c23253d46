"""Loading a model's weights, in the engine process: the model on its device, its tokenizer (for
detokenizing) and what serving needs to know about it (``ModelInfo``)."""

from __future__ import annotations

from typing import Any

import structlog
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoModelForMultimodalLM,
    AutoModelForSequenceClassification,
    AutoModelForSpeechSeq2Seq,
    AutoTokenizer,
    BitsAndBytesConfig,
)

from app.engine.architectures import EMBED, IMAGE_TEXT, MULTIMODAL, POOLING_TASKS, SCORE, SPEECH, TEXT, served_task
from app.engine.options import LoadOptions, ProgressFn
from app.engine.process import cpu_dtype
from app.engine.process.cpu_threads import cpu_threads
from app.engine.process.pooling import pooling_info
from app.engine.progress import weights_progress
from app.engine.types import ModelInfo

log = structlog.get_logger(__name__)

_GENERATION_KEYS = ("do_sample", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_new_tokens")
_UNBOUNDED = 10**7  # tokenizers say model_max_length=1e30 when they do not know
_MODEL_CLASSES = {
    TEXT: AutoModelForCausalLM,
    IMAGE_TEXT: AutoModelForImageTextToText,
    MULTIMODAL: AutoModelForMultimodalLM,
    SPEECH: AutoModelForSpeechSeq2Seq,
    EMBED: AutoModel,
    SCORE: AutoModelForSequenceClassification,
}


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _max_context(config: Any, tokenizer: Any, limit: int | None) -> int:
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    length = getattr(text_config, "max_position_embeddings", None)
    if not length:
        tok_len = getattr(tokenizer, "model_max_length", None)
        length = tok_len if tok_len and tok_len < _UNBOUNDED else 2048
    return min(length, limit) if limit else int(length)


def _weights_kwargs(opts: LoadOptions, device: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"dtype": opts.dtype, "trust_remote_code": opts.trust_remote_code}
    if opts.tensor_parallel_size > 1:  # this rank's shard, on this rank's device (torch.distributed is set up)
        kwargs["tp_plan"] = "auto"
        return kwargs
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


def _check_tensor_parallel(config: Any, opts: LoadOptions) -> None:
    """Only models whose family has a tensor-parallel plan, with heads that split evenly, can be sharded."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if not getattr(text, "base_model_tp_plan", None):
        raise ValueError(f"`{config.model_type}` models have no tensor-parallel plan in transformers")
    size = opts.tensor_parallel_size
    for field in ("num_attention_heads", "num_key_value_heads"):
        heads = getattr(text, field, None)
        if heads is not None and heads % size:
            raise ValueError(f"{field}={heads} does not split across --tensor-parallel-size {size}")


def load_weights(
    folder: str, name: str, opts: LoadOptions, progress: ProgressFn, *, device: str | None = None
) -> tuple[Any, Any, ModelInfo]:
    """The model on its device, its tokenizer and its ``ModelInfo``; ``progress`` sees the ``weights`` stage.
    ``device``: this rank's device, for a tensor-parallel model (``opts.tensor_parallel_size`` > 1)."""
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=opts.trust_remote_code)
    config = AutoConfig.from_pretrained(folder, trust_remote_code=opts.trust_remote_code)
    if opts.tensor_parallel_size > 1:
        _check_tensor_parallel(config, opts)
    device = device or _resolve_device(opts.device)
    if device == "cpu":
        cpu_threads.configure(opts.cpu_threads, opts.tensor_parallel_size)
    kwargs = _weights_kwargs(opts, device)
    task = served_task(
        getattr(config, "architectures", None), getattr(config, "model_type", None), config.num_labels, folder
    )
    with weights_progress(progress):
        model = _MODEL_CLASSES[task or TEXT].from_pretrained(folder, **kwargs)
    if "device_map" not in kwargs and "tp_plan" not in kwargs:
        model.to(device)
    if device == "cpu":
        cpu_threads.sized(model.num_parameters() // opts.tensor_parallel_size)
        cpu_dtype.advise(model.dtype)
    model.eval()
    info = ModelInfo(
        name=name,
        max_context=_max_context(config, tokenizer, opts.max_model_len),
        eos_token_ids=_eos_ids(model, tokenizer),
        generation_defaults=_generation_defaults(model),
        vocab_size=int((model.get_output_embeddings() or model.get_input_embeddings()).weight.shape[0]),
        model_type=str(getattr(config, "model_type", "") or ""),
        added_tokens=dict(tokenizer.get_added_vocab()),
        special_tokens=frozenset(t.content for t in tokenizer.added_tokens_decoder.values() if t.special),
        chat_template=template if isinstance(template := getattr(tokenizer, "chat_template", None), str) else "",
        task=task or TEXT,
    )
    if info.task in POOLING_TASKS:
        info = pooling_info(info, folder, config, model)
    log.info("model_loaded", model=name, device=str(model.device), dtype=str(model.dtype), max_context=info.max_context)
    return model, tokenizer, info
