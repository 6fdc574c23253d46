"""Offline byte-level BPE tokenizers for the tiny test models (Qwen2/Qwen3 compatible).

The BPE is trained with the ``tokenizers`` library on a small built-in corpus using the
exact normalizer / pre-tokenizer / decoder that ``transformers.Qwen2Tokenizer`` builds,
and is saved with ``tokenizer_class: Qwen2Tokenizer`` (as real Qwen3 checkpoints are).
This matters in transformers 5: ``AutoTokenizer`` re-instantiates ``Qwen2Tokenizer`` from
the vocab/merges, which rebuilds the Qwen2 pre-tokenizer; training with anything else
would silently change the ids after a save/load round trip.

A :class:`TokenizerSpec` names a model family's added tokens, its eos/pad/bos and chat template;
:data:`CHAT_TOKENIZER` is tiny-chat's (Qwen3). The other families' specs live with their builders.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.demo.canned_chats import CANNED_CHATS
from app.demo.chat_template import CHAT_TEMPLATE

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


@dataclass(frozen=True)
class TokenizerSpec:
    """A model family's tokens and chat template.

    ``special_tokens`` are added as special tokens in this order (ids right after the BPE vocab),
    then ``text_tokens`` as non-special added tokens. ``eos``, ``pad`` and ``bos`` name tokens of
    ``special_tokens`` (``pad``/``bos`` may be None). ``chats`` (canned chats, see
    :mod:`app.demo.canned_chats`) are rendered through ``chat_template`` into the BPE corpus.
    """

    special_tokens: tuple[str, ...]
    text_tokens: tuple[str, ...]
    eos: str
    pad: str | None
    bos: str | None
    chat_template: str
    chats: Sequence[dict[str, Any]]

    @property
    def added_tokens(self) -> tuple[str, ...]:
        return (*self.special_tokens, *self.text_tokens)


CHAT_TOKENIZER = TokenizerSpec(
    special_tokens=SPECIAL_TOKENS,
    text_tokens=TEXT_ADDED_TOKENS,
    eos=IM_END,
    pad=ENDOFTEXT,
    bos=None,
    chat_template=CHAT_TEMPLATE,
    chats=CANNED_CHATS,
)


def _tojson(value: Any, indent: int | None = None, separators: Any = None, sort_keys: bool = False) -> str:
    """The ``tojson`` filter as transformers' chat-template environment defines it."""
    return json.dumps(value, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)


def render_chat(spec: TokenizerSpec, chat: dict[str, Any]) -> str:
    """A canned chat's prompt through ``spec``'s template, rendered the way ``apply_chat_template`` does
    (same Jinja options, filters and special-token variables), without a tokenizer."""
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = raise_exception
    return env.from_string(spec.chat_template).render(
        messages=chat["messages"],
        tools=chat["tools"],
        add_generation_prompt=True,
        bos_token=spec.bos or "",
        eos_token=spec.eos,
        **chat["chat_template_kwargs"],
    )


def training_corpus(spec: TokenizerSpec = CHAT_TOKENIZER) -> list[str]:
    """Deterministic training text: generic prose plus the rendered canned chats, split on the
    added tokens exactly as the tokenizer splits them before BPE."""
    splitter = re.compile("|".join(re.escape(t) for t in spec.added_tokens))
    texts = _GENERIC_TEXT.splitlines()
    for chat in spec.chats:
        text = render_chat(spec, chat) + chat["completion"]
        texts += [piece for piece in splitter.split(text) if piece]
    return texts * 3


def build_tokenizer(
    out_dir: Path | None = None,
    *,
    spec: TokenizerSpec = CHAT_TOKENIZER,
    vocab_size: int = 2048,
    model_max_length: int = 2048,
    chat_template: bool = True,
) -> PreTrainedTokenizerFast:
    """Train the BPE tokenizer, attach the chat template and save it into ``out_dir``.

    Ids: trained BPE tokens first, then ``spec.special_tokens`` and ``spec.text_tokens`` in order
    (for tiny-chat, as in Qwen3: eos ``<|im_end|>``, pad ``<|endoftext|>``, no bos).
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers import AddedToken
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

    n_added = len(spec.added_tokens)
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
    bpe.train_from_iterator(training_corpus(spec), trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]

    first, *rest = spec.special_tokens
    tok = Qwen2Tokenizer(
        vocab=model["vocab"],
        merges=merges,
        unk_token=None,
        eos_token=first,  # the real eos/pad/bos are set below, once the ids are fixed
        pad_token=first,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    tok.add_special_tokens({"extra_special_tokens": rest})
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in spec.text_tokens])
    tok.eos_token, tok.pad_token, tok.bos_token = spec.eos, spec.pad, spec.bos
    base = len(model["vocab"])
    ids = tok.convert_tokens_to_ids(list(spec.added_tokens))
    if ids != list(range(base, base + n_added)):
        raise RuntimeError(f"unexpected added-token ids {ids} (base vocab {base})")
    if chat_template:
        tok.chat_template = spec.chat_template
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        tok.save_pretrained(str(out_dir))
    return tok
