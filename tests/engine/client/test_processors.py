"""Models that take more than text, through their real (tiny) processors: what each can take, the
renderer that expands media placeholders into model inputs, and the frontend each task gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from transformers import AutoConfig, AutoTokenizer

from app.engine.architectures import IMAGE_TEXT, MULTIMODAL, SPEECH, TEXT
from app.engine.client.processors import MultimodalRenderer, load_frontend, load_processor, modalities, sampling_rate
from app.engine.client.renderer import ChatRenderer
from app.engine.client.speech_frontend import SpeechFrontend
from app.engine.types import MediaInputs
from app.errors import InvalidRequest
from tests.fixtures.media_models import AUDIO_MODEL_ID, SPEECH_MODEL_ID, VISION_MODEL_ID
from tests.support.models import snapshot_path

ASK_IMAGE = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]}]
ASK_AUDIO = [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": "What is it?"}]}]


@pytest.fixture(scope="module")
def where(media_hf_home: Path) -> Any:
    return lambda model_id: str(snapshot_path(media_hf_home, model_id))


def renderer(where: Any, model_id: str) -> tuple[MultimodalRenderer, Any]:
    processor = load_processor(where(model_id))
    return MultimodalRenderer(processor.tokenizer, processor), processor


@pytest.mark.parametrize(
    ("model_id", "found", "rate"),
    [
        (VISION_MODEL_ID, {"text", "image"}, None),
        (AUDIO_MODEL_ID, {"text", "audio"}, 16000),
        (SPEECH_MODEL_ID, {"text", "audio"}, 16000),
    ],
)
def test_what_a_processor_can_take(where: Any, model_id: str, found: set[str], rate: int | None) -> None:
    processor = load_processor(where(model_id))
    assert modalities(processor) == found
    assert sampling_rate(processor) == rate


def test_an_image_expands_its_placeholder_and_becomes_pixel_values(where: Any) -> None:
    render, processor = renderer(where, VISION_MODEL_ID)
    encoded = render.encode_chat_media(ASK_IMAGE, MediaInputs(images=[Image.new("RGB", (40, 30), (255, 0, 0))]))
    image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    assert encoded.ids.count(image_id) > 1  # one placeholder, as many tokens as the image needs
    assert all(isinstance(i, int) for i in encoded.ids)
    assert set(encoded.inputs) == {"pixel_values"}  # ids and masks are not model inputs here
    assert isinstance(encoded.inputs["pixel_values"], np.ndarray) and encoded.inputs["pixel_values"].shape[0] == 1


def test_audio_becomes_features_at_the_extractor_rate(where: Any) -> None:
    render, _ = renderer(where, AUDIO_MODEL_ID)
    encoded = render.encode_chat_media(ASK_AUDIO, MediaInputs(audios=[np.zeros(16000, np.float32)]))
    assert {"input_features", "feature_attention_mask"} <= set(encoded.inputs)
    assert all(isinstance(value, np.ndarray) for value in encoded.inputs.values())


@pytest.mark.parametrize(
    ("messages", "images"),
    [(ASK_IMAGE, []), ([{"role": "user", "content": "Hi"}], [Image.new("RGB", (40, 30))])],
)
def test_placeholders_and_media_that_do_not_match_are_400(where: Any, messages: list, images: list) -> None:
    render, _ = renderer(where, VISION_MODEL_ID)
    with pytest.raises(InvalidRequest, match="processor rejected the media") as caught:
        render.encode_chat_media(messages, MediaInputs(images=images))
    assert caught.value.param == "messages"


def test_the_processor_template_serves_a_tokenizer_without_one(where: Any) -> None:
    processor = load_processor(where(VISION_MODEL_ID))
    tokenizer = AutoTokenizer.from_pretrained(where(VISION_MODEL_ID))
    tokenizer.chat_template = None
    MultimodalRenderer(tokenizer, processor)
    assert tokenizer.chat_template == processor.chat_template


@pytest.mark.parametrize(
    ("model_id", "task", "kind", "fields"),
    [
        (VISION_MODEL_ID, TEXT, ChatRenderer, {}),
        (VISION_MODEL_ID, IMAGE_TEXT, MultimodalRenderer, {"modalities": {"text", "image"}, "rate": None}),
        (AUDIO_MODEL_ID, MULTIMODAL, MultimodalRenderer, {"modalities": {"text", "audio"}, "rate": 16000}),
        (SPEECH_MODEL_ID, SPEECH, SpeechFrontend, {"modalities": {"audio"}, "rate": 16000}),
    ],
)
def test_each_task_gets_its_frontend(where: Any, model_id: str, task: str, kind: type, fields: dict) -> None:
    path = where(model_id)
    frontend, info = load_frontend(
        path, {}, task, AutoTokenizer.from_pretrained(path), AutoConfig.from_pretrained(path)
    )
    assert type(frontend) is kind
    if not fields:
        assert info == {}
        return
    assert info["task"] == task and info["modalities"] == fields["modalities"]
    assert info["audio_sampling_rate"] == fields["rate"]
    if task == SPEECH:
        assert info["audio_window_s"] == frontend.window_s > 0
