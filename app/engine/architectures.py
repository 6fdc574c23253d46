"""Which checkpoints are generative, read from a config's ``architectures`` / ``model_type``."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from transformers.models.auto import modeling_auto as auto

TEXT = "text-generation"
IMAGE_TEXT = "image-text-to-text"
MULTIMODAL = "multimodal-lm"
SPEECH = "speech-to-text"
SERVED_TASKS = (TEXT, IMAGE_TEXT, MULTIMODAL, SPEECH)
_TASK_MAPPINGS = {
    TEXT: "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    IMAGE_TEXT: "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES",
    MULTIMODAL: "MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES",
    SPEECH: "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES",
    "text2text-generation": "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
}


def _names(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@cache
def _classes(task: str) -> frozenset[str]:
    mapping = getattr(auto, _TASK_MAPPINGS[task])
    return frozenset(name for value in mapping.values() for name in _names(value))


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
