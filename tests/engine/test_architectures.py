"""Which checkpoints are generative, from their config's ``architectures`` or, without them, ``model_type``; and
what the rest are served as (embedding models, cross-encoders) or that they are not served."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.engine.architectures import SERVED_TASKS, default_pooling, generative_task, served_task


@pytest.mark.parametrize(
    ("architectures", "model_type", "task"),
    [
        (["Qwen3ForCausalLM"], "qwen3", "text-generation"),
        (["LlavaForConditionalGeneration"], "llava", "image-text-to-text"),
        (["WhisperForConditionalGeneration"], "whisper", "speech-to-text"),
        (["BertModel"], "bert", None),  # an encoder
        (None, "llama", "text-generation"),  # no architectures: the model type decides
        (None, None, None),
    ],
)
def test_generative_task(architectures: list[str] | None, model_type: str | None, task: str | None) -> None:
    assert generative_task(architectures, model_type) == task


def test_the_served_tasks() -> None:
    assert "text2text-generation" not in SERVED_TASKS
    generative = {"text-generation", "image-text-to-text", "multimodal-lm", "speech-to-text"}
    assert set(SERVED_TASKS) == generative | {"embed", "score"}


@pytest.mark.parametrize(
    ("architectures", "model_type", "num_labels", "task"),
    [
        (["Qwen3ForCausalLM"], "qwen3", None, "text-generation"),
        (["BertModel"], "bert", None, "embed"),  # a bare encoder embeds
        (["Qwen3Model"], "qwen3", None, "embed"),
        (["BertForSequenceClassification"], "bert", 1, "score"),  # a cross-encoder
        (["BertForSequenceClassification"], "bert", 3, None),  # a classifier with labels
        (["DistilBertForMaskedLM"], "distilbert", None, None),
        (None, "bert", None, "text-generation"),  # without architectures, as before: bert has a causal-LM head
    ],
)
def test_served_task(
    architectures: list[str] | None, model_type: str, num_labels: int | None, task: str | None
) -> None:
    assert served_task(architectures, model_type, num_labels, None) == task


def test_a_sentence_transformers_layout_makes_a_decoder_an_embedding_model(tmp_path: Path) -> None:
    assert served_task(["Qwen3ForCausalLM"], "qwen3", None, tmp_path) == "text-generation"
    modules = [
        {"path": "", "type": "sentence_transformers.models.Transformer"},
        {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    assert served_task(["Qwen3ForCausalLM"], "qwen3", None, tmp_path) == "embed"


def test_default_pooling_is_mean_for_encoders_and_the_last_token_for_decoders() -> None:
    assert default_pooling("bert") == default_pooling("distilbert") == "mean"
    assert default_pooling("qwen3") == "lasttoken"
