"""Which checkpoints this server serves, and as what: read from a config's ``architectures`` /
``model_type`` (and, for embedding models, the sentence-transformers files beside it).

Generative tasks run the batching engine; the pooling tasks (``embed``, ``score``) run the pooling engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

from transformers.models.auto import modeling_auto as auto

from app.engine.sentence_transformers import has_layout

TEXT = "text-generation"
IMAGE_TEXT = "image-text-to-text"
MULTIMODAL = "multimodal-lm"
SPEECH = "speech-to-text"
EMBED = "embed"  # one vector per input: /v1/embeddings
SCORE = "score"  # one relevance score per (query, document) pair: /v1/rerank, /v1/score
POOLING_TASKS = (EMBED, SCORE)
SERVED_TASKS = (TEXT, IMAGE_TEXT, MULTIMODAL, SPEECH, *POOLING_TASKS)
_TASK_MAPPINGS = {
    TEXT: "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    IMAGE_TEXT: "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES",
    MULTIMODAL: "MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES",
    SPEECH: "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES",
    "text2text-generation": "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
}
_BASE_MODELS = "MODEL_MAPPING_NAMES"  # AutoModel: encoders and decoders without a head
_CLASSIFIERS = "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES"
_MASKED_LM = "MODEL_FOR_MASKED_LM_MAPPING_NAMES"


def _names(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@cache
def _mapping_classes(mapping: str) -> frozenset[str]:
    return frozenset(name for value in getattr(auto, mapping).values() for name in _names(value))


@cache
def _classes(task: str) -> frozenset[str]:
    return _mapping_classes(_TASK_MAPPINGS[task])


@cache
def _model_types(task: str) -> frozenset[str]:
    return frozenset(getattr(auto, _TASK_MAPPINGS[task]).keys())


def generative_task(architectures: Iterable[str] | None, model_type: str | None) -> str | None:
    """The generative task a checkpoint serves, or None (encoders, classifiers, ...)."""
    archs = list(architectures or [])
    for task in _TASK_MAPPINGS:
        if archs and any(arch in _classes(task) for arch in archs):
            return task
    if not archs and model_type:
        for task in _TASK_MAPPINGS:
            if model_type in _model_types(task):
                return task
    return None


def served_task(
    architectures: Iterable[str] | None, model_type: str | None, num_labels: int | None, folder: str | Path | None
) -> str | None:
    """What this server serves a checkpoint as: a sentence-transformers layout is an embedding model (a decoder
    one too: Qwen3-Embedding's config names Qwen3ForCausalLM); else a generative task; else a sequence classifier
    with one label scores pairs (a cross-encoder), and a bare base model (AutoModel's) embeds. None: not served."""
    if folder is not None and has_layout(folder):
        return EMBED
    archs = list(architectures or [])
    task = generative_task(archs, model_type)
    if task is not None:
        return task
    if num_labels == 1 and any(arch in _mapping_classes(_CLASSIFIERS) for arch in archs):
        return SCORE
    if any(arch in _mapping_classes(_BASE_MODELS) for arch in archs):
        return EMBED
    return None


def default_pooling(model_type: str | None) -> str:
    """The pooling of an embedding model without a sentence-transformers layout: an encoder family (one with a
    masked-LM head) averages its tokens, as sentence-transformers does for a plain checkpoint; a decoder, whose
    last token has seen the whole input, takes that one."""
    return "mean" if model_type in getattr(auto, _MASKED_LM) else "lasttoken"
