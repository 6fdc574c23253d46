"""Offline byte-level BPE tokenizer for the tiny test models (Qwen2/Qwen3 compatible).

The BPE is trained with the ``tokenizers`` library on a small built-in corpus using the
exact normalizer / pre-tokenizer / decoder that ``transformers.Qwen2Tokenizer`` builds,
and is saved with ``tokenizer_class: Qwen2Tokenizer`` (as real Qwen3 checkpoints are).
This matters in transformers 5: ``AutoTokenizer`` re-instantiates ``Qwen2Tokenizer`` from
the vocab/merges, which rebuilds the Qwen2 pre-tokenizer; training with anything else
would silently change the ids after a save/load round trip.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from app.testing.canned_chats import CANNED_CHATS
from app.testing.chat_template import CHAT_TEMPLATE

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)
# Added as NON-special tokens (like Qwen3): ``skip_special_tokens=True`` keeps them.
TEXT_ADDED_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>")

_GENERIC_TEXT = """\
The quick brown fox jumps over the lazy dog. A tiny model can still say many things.
This server speaks the OpenAI chat completions protocol and streams tokens as they are generated.
Paris is the capital of France. Berlin is the capital of Germany. Rome is the capital of Italy.
Madrid, Lisbon, London, Tokyo and New York are large cities with many people.
The weather today is sunny, tomorrow it will be cloudy with some rain and wind.
Temperature is measured in degrees. It is 18 degrees and sunny, or 7 degrees and cold.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 12 18 20 42 100 1000 2048 3.14 -1 +1 = % $ #
Please answer the question. Thank you for your help! What is your name? My name is Alice.
Nice to meet you, Bob. How are you? I am fine, thanks. Goodbye and see you soon.
def hello(name: str) -> str:
    return f"Hello, {name}!"
{"name": "value", "items": [1, 2, 3], "ok": true, "none": null}
"""


def _rendered_chats() -> list[str]:
    """Each canned chat rendered through the chat template (prompt + completion)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda value: json.dumps(value, ensure_ascii=False)
    template = env.from_string(CHAT_TEMPLATE)
    return [
        template.render(
            messages=chat["messages"], tools=chat["tools"], add_generation_prompt=True, **chat["chat_template_kwargs"]
        )
        + chat["completion"]
        for chat in CANNED_CHATS
    ]


def training_corpus() -> list[str]:
    """Deterministic training text: generic prose plus the rendered canned chats, split on the
    added tokens exactly as the tokenizer splits them before BPE."""
    splitter = re.compile("|".join(re.escape(t) for t in (*SPECIAL_TOKENS, *TEXT_ADDED_TOKENS)))
    texts = _GENERIC_TEXT.splitlines()
    for text in _rendered_chats():
        texts += [piece for piece in splitter.split(text) if piece]
    return texts * 3


def build_tokenizer(
    out_dir: Path | None = None,
    *,
    vocab_size: int = 2048,
    model_max_length: int = 2048,
    chat_template: bool = True,
) -> PreTrainedTokenizerFast:
    """Train the BPE tokenizer, attach the chat template and save it into ``out_dir``.

    Ids: trained BPE tokens first, then ``<|endoftext|> <|im_start|> <|im_end|>`` and the
    non-special text tokens (same order as Qwen3). eos is ``<|im_end|>``, pad ``<|endoftext|>``.
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers import AddedToken
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

    n_added = len(SPECIAL_TOKENS) + len(TEXT_ADDED_TOKENS)
    bpe = Tokenizer(BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - n_added,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(training_corpus(), trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]

    tok = Qwen2Tokenizer(
        vocab=model["vocab"],
        merges=merges,
        unk_token=None,
        eos_token=ENDOFTEXT,  # switched to <|im_end|> below, once the ids are fixed
        pad_token=ENDOFTEXT,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    tok.add_special_tokens({"extra_special_tokens": [IM_START, IM_END]})
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TEXT_ADDED_TOKENS])
    tok.eos_token = IM_END
    base = len(model["vocab"])
    ids = tok.convert_tokens_to_ids([*SPECIAL_TOKENS, *TEXT_ADDED_TOKENS])
    if ids != list(range(base, base + n_added)):
        raise RuntimeError(f"unexpected added-token ids {ids} (base vocab {base})")
    if chat_template:
        tok.chat_template = CHAT_TEMPLATE
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        tok.save_pretrained(str(out_dir))
    return tok
