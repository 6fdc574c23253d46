"""Models that take more than text: their processors, in the HTTP process.

The processor runs in the HTTP process (off the event loop): it renders the chat template, expands the
model's image/audio/video placeholders to as many tokens as the media need, and turns the media into
the arrays the model's forward takes (``pixel_values``, ``input_features``, ...). Those arrays travel to
the engine process with the prompt ids (``GenerationRequest.inputs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from transformers import AutoProcessor, GenerationConfig

from app.engine.architectures import SPEECH, TEXT
from app.engine.client.renderer import ChatRenderer
from app.engine.client.speech_frontend import SpeechFrontend
from app.engine.types import EncodedPrompt, MediaInputs
from app.errors import InvalidRequest

_TOKEN_KEYS = frozenset({"input_ids", "attention_mask", "token_type_ids"})


def load_processor(where: str, **kwargs: Any) -> Any:
    return AutoProcessor.from_pretrained(where, **kwargs)


def modalities(processor: Any) -> frozenset[str]:
    """What a processor can turn into model inputs, besides text."""
    found = {"text"}
    if getattr(processor, "image_processor", None) is not None:
        found.add("image")
    if getattr(processor, "feature_extractor", None) is not None:
        found.add("audio")
    if "video_processor" in getattr(processor, "get_attributes", lambda: [])():
        found.add("video")
    return frozenset(found)


def sampling_rate(processor: Any) -> int | None:
    extractor = getattr(processor, "feature_extractor", None)
    rate = getattr(extractor, "sampling_rate", None)
    return int(rate) if rate else None


def _arrays(batch: Mapping[str, Any]) -> dict[str, Any]:
    """Model inputs besides the ids, as numpy (picklable, torch-free across the pipe)."""
    out = {}
    for key, value in batch.items():
        if key in _TOKEN_KEYS or key.startswith("num_"):
            continue
        out[key] = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
    return out


class MultimodalRenderer(ChatRenderer):
    """Chat templating with the processor's template, and media through the processor."""

    def __init__(self, tokenizer: Any, processor: Any) -> None:
        if getattr(processor, "chat_template", None) and not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = processor.chat_template
        super().__init__(tokenizer)
        self._processor = processor

    def encode_chat_media(
        self,
        messages: list[dict[str, Any]],
        media: MediaInputs,
        *,
        tools: list[dict[str, Any]] | None = None,
        template_kwargs: Mapping[str, Any] | None = None,
        special_tokens: bool = False,
    ) -> EncodedPrompt:
        kwargs = dict(template_kwargs or {})
        if media.video_audios:
            kwargs.setdefault("use_audio_in_video", True)
        text = self.render_chat(messages, tools=tools, template_kwargs=kwargs)
        self.check_length(text, "messages")  # the processor only adds tokens (a media part's placeholders)
        call: dict[str, Any] = {"text": [text], "return_tensors": "np", "add_special_tokens": special_tokens}
        if media.images:
            call["images"] = media.images
        audios = [*media.audios, *media.video_audios]
        if audios:
            call["audio"] = audios
            call["sampling_rate"] = sampling_rate(self._processor)
        if media.videos:
            call["videos"] = media.videos
        if media.video_audios:
            call["use_audio_in_video"] = True
        try:
            batch = self._processor(**call)
        except (ValueError, TypeError, IndexError) as exc:  # e.g. placeholders and media that do not match
            raise InvalidRequest(f"The model's processor rejected the media: {exc}", param="messages") from exc
        except ImportError as exc:  # video processors need torchvision
            raise InvalidRequest(f"This server cannot process this media for this model: {exc}") from exc
        ids = np.asarray(batch["input_ids"])[0].tolist()
        return EncodedPrompt(ids=[int(i) for i in ids], inputs=_arrays(batch))


def load_frontend(where: str, common: dict[str, Any], task: str, tokenizer: Any, config: Any) -> tuple[Any, dict]:
    """The renderer (or speech frontend) of a model, and what ``ModelInfo`` learns from its processor."""
    if task == TEXT:
        return ChatRenderer(tokenizer), {}
    processor = load_processor(where, **common)
    if task == SPEECH:
        try:
            generation = GenerationConfig.from_pretrained(where, **common)
        except OSError:
            generation = None
        frontend = SpeechFrontend(processor, config, generation)
        fields = {
            "task": task,
            "modalities": frozenset({"audio"}),
            "audio_sampling_rate": frontend.sampling_rate,
            "audio_window_s": frontend.window_s,
        }
        return frontend, fields
    fields = {"task": task, "modalities": modalities(processor), "audio_sampling_rate": sampling_rate(processor)}
    return MultimodalRenderer(tokenizer, processor), fields
