"""The HTTP-process side of a speech-to-text model: log-mel features, Whisper's decoder prompt
(language, task, prompt text, timestamps), and turning generated ids back into text and segments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from transformers import GenerationConfig

from app.engine.types import SpeechInput, SpeechTask
from app.errors import InvalidRequest, UnsupportedParameter

_DEFAULT_WINDOW_S = 30.0


class SpeechFrontend:
    def __init__(self, processor: Any, config: Any, generation: GenerationConfig | None) -> None:
        self._processor = processor
        self._tokenizer = getattr(processor, "tokenizer", processor)
        self._extractor = processor.feature_extractor
        self._generation = generation
        self.is_whisper = getattr(config, "model_type", None) == "whisper"
        self._max_target = int(getattr(config, "max_target_positions", 0) or 448)
        # English-only checkpoints (Whisper's *.en) have no language or task tokens: generate takes neither
        self.english_only = self.is_whisper and not (
            getattr(generation, "is_multilingual", None) or getattr(generation, "lang_to_id", None)
        )
        # Whisper's translate task (speech in any language it knows, English text out) needs its task token
        self.translates = self.is_whisper and "translate" in (getattr(generation, "task_to_id", None) or {})
        self.sampling_rate = int(self._extractor.sampling_rate)
        self.window_s = float(getattr(self._extractor, "chunk_length", 0) or _DEFAULT_WINDOW_S)

    def _language_token(self, language: str) -> str:
        from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

        code = language.strip().lower()
        code = TO_LANGUAGE_CODE.get(code, code)
        token = f"<|{code}|>"
        lang_to_id = getattr(self._generation, "lang_to_id", None) or {}
        if token not in lang_to_id:
            raise InvalidRequest(f"This model does not know the language `{language}`.", param="language")
        return code

    def language_name(self, language: str | None) -> str | None:
        from transformers.models.whisper.tokenization_whisper import LANGUAGES

        if language is None:
            return "english" if self.english_only else None
        return LANGUAGES.get(language, language)

    def _check_english(self, language: str) -> None:
        from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

        code = language.strip().lower()
        if TO_LANGUAGE_CODE.get(code, code) != "en":
            raise InvalidRequest(
                f"This model transcribes English only; `language` may be `en`, not `{language}`.", param="language"
            )

    def prepare(
        self,
        samples: Any,
        *,
        language: str | None,
        prompt: str | None,
        timestamps: bool,
        task: SpeechTask = "transcribe",
    ) -> SpeechInput:
        """Features and the decoder prompt of one window; ``task`` is ``translate`` only where ``translates``."""
        if not self.is_whisper:
            if language:
                raise UnsupportedParameter("Only Whisper-family models take `language`.", param="language")
            if prompt:
                raise UnsupportedParameter("Only Whisper-family models take `prompt`.", param="prompt")
        features = self._extractor(
            np.asarray(samples, dtype=np.float32),
            sampling_rate=self.sampling_rate,
            return_tensors="np",
            return_attention_mask=True,
        )
        inputs = {key: np.asarray(value) for key, value in features.items()}
        start = getattr(self._generation, "decoder_start_token_id", None)
        prompt_ids: list[int] = [int(start)] if start is not None else []
        options: dict[str, Any] = {}
        if self.english_only:
            options = {"return_timestamps": timestamps}
            if language:
                self._check_english(language)
        elif self.is_whisper:
            options = {"task": task, "return_timestamps": timestamps}
            if language:
                options["language"] = self._language_token(language)
            if prompt:
                ids = [int(i) for i in self._tokenizer.get_prompt_ids(prompt, return_tensors="np")]
                ids = ids[-(self._max_target // 2 - 1) :]
                options["prompt_ids"] = ids
                prompt_ids = ids + prompt_ids
        room = self._max_target - len(prompt_ids) - 4  # start, language, task, timestamps
        if room < 1:
            raise InvalidRequest("The prompt leaves the model no room to transcribe; shorten it.", param="prompt")
        return SpeechInput(inputs=inputs, prompt_ids=prompt_ids or [0], options=options, max_tokens=room)

    def decode(self, token_ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(token_ids), skip_special_tokens=True))

    def segments(self, token_ids: Sequence[int], offset: float, duration: float) -> list[tuple[float, float, str]]:
        """Timestamped segments where the model predicted timestamps, else the window as one segment."""
        end_of_window = offset + duration
        spans: list[tuple[float, float, str]] = []
        if self.is_whisper:
            decoded = self._tokenizer.decode(list(token_ids), skip_special_tokens=True, output_offsets=True)
            for item in decoded.get("offsets", []) if isinstance(decoded, dict) else []:
                start, end = item["timestamp"]
                start = min(max(offset, offset + float(start)), end_of_window)
                end = min(max(start, offset + float(end if end is not None else duration)), end_of_window)
                if spans:
                    start = max(start, spans[-1][1])
                    end = max(end, start)
                spans.append((round(start, 2), round(end, 2), item["text"]))
        if "".join(text for _, _, text in spans).strip() != self.decode(token_ids).strip():
            spans = []  # the text after the last timestamp would be lost: keep the window whole instead
        if not spans:
            spans.append((round(offset, 2), round(end_of_window, 2), self.decode(token_ids)))
        return spans
