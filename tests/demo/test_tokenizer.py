"""The tiny chat tokenizer: trained offline, added tokens right after the BPE vocabulary, and a template
renderer that matches ``apply_chat_template`` without a tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from app.demo.canned_chats import CANNED_CHATS
from app.demo.tokenizer import CHAT_TOKENIZER, build_tokenizer, render_chat, training_corpus


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tokenizer")
    build_tokenizer(out, vocab_size=1024)
    return out


def test_added_tokens_follow_the_bpe_vocab_with_qwen3s_special_tokens(saved: Path) -> None:
    tok = AutoTokenizer.from_pretrained(saved)
    assert len(tok) <= 1024  # at most the asked size (the small corpus may stop BPE earlier)
    ids = tok.convert_tokens_to_ids(list(CHAT_TOKENIZER.added_tokens))
    assert ids == list(range(len(tok) - len(ids), len(tok)))
    assert (tok.eos_token, tok.pad_token, tok.bos_token) == ("<|im_end|>", "<|endoftext|>", None)


def test_text_round_trips(saved: Path) -> None:
    tok = AutoTokenizer.from_pretrained(saved)
    text = 'Hello, Zürich! <tool_call>\n{"a": 1}\n</tool_call> 3.14'
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


@pytest.mark.parametrize("chat", CANNED_CHATS, ids=lambda chat: chat["name"])
def test_render_chat_is_apply_chat_template(saved: Path, chat: dict[str, Any]) -> None:
    tok = AutoTokenizer.from_pretrained(saved)
    expected = tok.apply_chat_template(
        chat["messages"],
        tools=chat["tools"],
        add_generation_prompt=True,
        tokenize=False,
        **chat["chat_template_kwargs"],
    )
    assert render_chat(CHAT_TOKENIZER, chat) == expected


def test_the_corpus_is_deterministic_and_holds_no_added_token() -> None:
    corpus = training_corpus()
    assert corpus == training_corpus()
    assert not any(token in piece for piece in corpus for token in CHAT_TOKENIZER.added_tokens)
    assert any(chat["completion"].split("<")[0] in piece for chat in CANNED_CHATS for piece in corpus)


def test_no_template_when_not_asked() -> None:
    assert build_tokenizer(chat_template=False, vocab_size=600).chat_template is None
