"""Tiny offline models that take media, built in seconds with random weights and stock classes:

* :data:`VISION_MODEL_ID`: LLaVA (a tiny CLIP vision tower + a tiny Qwen2), stock ``LlavaProcessor``
  with the PIL CLIP image processor (28x28 crops, 7x7 patches: 17 ``<image>`` tokens per image).
* :data:`AUDIO_MODEL_ID`: Qwen2-Audio (tiny Whisper-style encoder + tiny Qwen2), stock
  ``Qwen2AudioProcessor`` with a 16-mel, 4-second ``WhisperFeatureExtractor`` (25 audio tokens a second).
* :data:`SPEECH_MODEL_ID`: Whisper with a ``WhisperTokenizer`` built from a locally trained byte-level
  BPE plus Whisper's special and timestamp tokens, a 5-second window (so long audio is chunked) and a
  generation config like the real checkpoints'. Tokens that do not decode to printable text on their
  own, and end-of-text, are suppressed, so every window yields clean text up to the length limit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.testing.tokenizer import build_tokenizer
from app.testing.training import seeded

VISION_MODEL_ID = "hfserve/tiny-llava"
AUDIO_MODEL_ID = "hfserve/tiny-qwen2-audio"
SPEECH_MODEL_ID = "hfserve/tiny-whisper"

IMAGE_TOKEN = "<image>"
AUDIO_TOKENS = ("<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>")
IMAGE_TOKENS_PER_IMAGE = 17  # (28 / 7) ** 2 patches + CLS
SPEECH_WINDOW_S = 5

# Renders string content as is and list content part by part; media parts become the model's placeholder.
_MEDIA_TEMPLATE = (
    "{%- for message in messages -%}"
    "<|im_start|>{{ message['role'] }}\n"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'text' -%}{{ part['text'] }}"
    "{%- elif part['type'] == 'image' -%}PLACEHOLDER_IMAGE"
    "{%- elif part['type'] == 'audio' -%}PLACEHOLDER_AUDIO"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "<|im_end|>\n"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|im_start|>assistant\n{%- endif -%}"
)


def _template(image: str = "", audio: str = "") -> str:
    return _MEDIA_TEMPLATE.replace("PLACEHOLDER_IMAGE", image).replace("PLACEHOLDER_AUDIO", audio)


def _qwen2_text(vocab_size: int, tok: Any) -> Any:
    from transformers import Qwen2Config

    return Qwen2Config(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=vocab_size,
        max_position_embeddings=2048,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
    )


def init_weights(model: Any, gen: Any, std: float = 0.1) -> None:
    """Norm weights 1, biases 0, matrices normal(0, std) from a local generator."""
    import torch

    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if name.endswith("bias"):
                param.zero_()
            elif param.ndim == 1:
                param.fill_(1.0)
            else:
                param.normal_(0.0, std, generator=gen)


def _padded(n: int, multiple: int = 64) -> int:
    return -(-n // multiple) * multiple


def _finish(model: Any, tok: Any, out_dir: Path) -> None:
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model.save_pretrained(str(out_dir))


def build_vision_model(out_dir: Path, *, seed: int = 0) -> Path:
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    out_dir = Path(out_dir)
    tok = build_tokenizer(chat_template=False)
    tok.add_tokens([IMAGE_TOKEN], special_tokens=True)
    tok.chat_template = _template(image=IMAGE_TOKEN)
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=28, patch_size=7
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=_qwen2_text(_padded(len(tok)), tok),
        image_token_id=tok.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",
    )
    with seeded(seed) as gen:
        model = LlavaForConditionalGeneration(config)
        init_weights(model, gen)
    _finish(model, tok, out_dir)
    images = CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    processor = LlavaProcessor(
        image_processor=images,
        tokenizer=tok,
        patch_size=7,
        vision_feature_select_strategy="full",
        num_additional_image_tokens=1,
        chat_template=tok.chat_template,
    )
    processor.save_pretrained(str(out_dir))
    return out_dir


def build_audio_model(out_dir: Path, *, seed: int = 0) -> Path:
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioEncoderConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    out_dir = Path(out_dir)
    tok = build_tokenizer(chat_template=False)
    tok.add_tokens(list(AUDIO_TOKENS), special_tokens=True)
    tok.chat_template = _template(audio="".join((AUDIO_TOKENS[1], AUDIO_TOKENS[0], AUDIO_TOKENS[2])))
    features = WhisperFeatureExtractor(feature_size=16, sampling_rate=16000, chunk_length=4)
    encoder = Qwen2AudioEncoderConfig(
        num_mel_bins=16,
        encoder_layers=2,
        encoder_attention_heads=2,
        encoder_ffn_dim=64,
        d_model=32,
        max_source_positions=features.nb_max_frames // 2,
    )
    config = Qwen2AudioConfig(
        audio_config=encoder,
        text_config=_qwen2_text(_padded(len(tok)), tok),
        audio_token_id=tok.convert_tokens_to_ids(AUDIO_TOKENS[0]),
    )
    with seeded(seed) as gen:
        model = Qwen2AudioForConditionalGeneration(config)
        init_weights(model, gen)
    _finish(model, tok, out_dir)
    Qwen2AudioProcessor(feature_extractor=features, tokenizer=tok, chat_template=tok.chat_template).save_pretrained(
        str(out_dir)
    )
    return out_dir


def _whisper_tokenizer(out_dir: Path) -> Any:
    """Byte-level BPE trained here, then Whisper's specials in Whisper's order and 1501 timestamps."""
    from tokenizers import Tokenizer, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers import AddedToken, WhisperTokenizer
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    from app.testing.tokenizer import training_corpus

    bpe = Tokenizer(BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=1024, min_frequency=2, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(training_corpus(), trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tok = WhisperTokenizer(vocab=model["vocab"], merges=merges)
    specials = ["<|endoftext|>", "<|startoftranscript|>", *[f"<|{code}|>" for code in LANGUAGES]]
    specials += ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>"]
    specials += ["<|notimestamps|>"]
    tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in specials], special_tokens=True)
    tok.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>", special=False, normalized=False) for i in range(1501)])
    tok.set_prefix_tokens(language=None, task="transcribe", predict_timestamps=False)
    tok.save_pretrained(str(out_dir))
    return tok


def _unprintable(tok: Any, first_special: int) -> list[int]:
    texts = {i: tok.decode([i]) for i in range(first_special)}
    return sorted(i for i, t in texts.items() if not t or "\ufffd" in t or not t.isprintable())


def _padding_rows(tok: Any, vocab_size: int) -> list[int]:
    return list(range(len(tok), vocab_size))


def build_speech_model(out_dir: Path, *, seed: int = 0) -> Path:
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = _whisper_tokenizer(out_dir)
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>")}
    eos, sot, no_ts = ids["<|endoftext|>"], ids["<|startoftranscript|>"], ids["<|notimestamps|>"]
    features = WhisperFeatureExtractor(feature_size=16, sampling_rate=16000, chunk_length=SPEECH_WINDOW_S)
    config = WhisperConfig(
        vocab_size=_padded(len(tok)),
        num_mel_bins=16,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=features.nb_max_frames // 2,
        max_target_positions=64,
        pad_token_id=eos,
        bos_token_id=eos,
        eos_token_id=eos,
        decoder_start_token_id=sot,
        suppress_tokens=None,
        begin_suppress_tokens=None,
    )
    with seeded(seed) as gen:
        model = WhisperForConditionalGeneration(config)
        init_weights(model, gen)
    first_special = eos
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot,
        eos_token_id=eos,
        pad_token_id=eos,
        bos_token_id=eos,
        max_length=64,
        is_multilingual=True,
        lang_to_id={f"<|{code}|>": tok.convert_tokens_to_ids(f"<|{code}|>") for code in LANGUAGES},
        task_to_id={task: tok.convert_tokens_to_ids(f"<|{task}|>") for task in ("transcribe", "translate")},
        no_timestamps_token_id=no_ts,
        prev_sot_token_id=tok.convert_tokens_to_ids("<|startofprev|>"),
        max_initial_timestamp_index=50,
        suppress_tokens=[*_unprintable(tok, first_special), eos, *_padding_rows(tok, config.vocab_size)],
        begin_suppress_tokens=[eos],
        alignment_heads=[[1, 0], [1, 1]],
        return_timestamps=False,
    )
    model.save_pretrained(str(out_dir))
    WhisperProcessor(feature_extractor=features, tokenizer=tok).save_pretrained(str(out_dir))
    return out_dir


MEDIA_BUILDERS = {
    VISION_MODEL_ID: build_vision_model,
    AUDIO_MODEL_ID: build_audio_model,
    SPEECH_MODEL_ID: build_speech_model,
}
