"""Which checkpoints are generative, from their config's ``architectures`` or, without them, ``model_type``."""

from __future__ import annotations

import pytest

from app.engine.architectures import SERVED_TASKS, generative_task


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


def test_every_served_task_is_generative() -> None:
    assert "text2text-generation" not in SERVED_TASKS
    assert set(SERVED_TASKS) == {"text-generation", "image-text-to-text", "multimodal-lm", "speech-to-text"}
