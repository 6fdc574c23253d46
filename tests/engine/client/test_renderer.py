"""Prompt rendering: fill-in-the-middle with a tokenizer's own FIM tokens; detokenizing and token strings; and
prompts refused untokenized when no context could hold them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.engine.client.renderer import ChatRenderer, longest_token_chars
from app.errors import InvalidRequest, PromptTooLong
from tests.support.models import CHAT_MODEL_ID, load_tokenizer


@pytest.mark.parametrize(
    "markers",
    [("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"), ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")],
)
def test_fim_is_prefix_suffix_middle(hf_home: Path, markers: tuple[str, str, str]) -> None:
    tokenizer = load_tokenizer(hf_home, CHAT_MODEL_ID)
    tokenizer.add_special_tokens({"additional_special_tokens": list(markers)})
    renderer = ChatRenderer(tokenizer)
    ids = renderer.encode_fim("def add(a, b):\n    ", "\n    return c")
    begin, hole, end = (tokenizer.convert_tokens_to_ids(m) for m in markers)
    assert ids[0] == begin and ids[-1] == end
    assert ids.index(hole) > 0
    assert tokenizer.decode(ids[1 : ids.index(hole)]) == "def add(a, b):\n    "
    assert tokenizer.decode(ids[ids.index(hole) + 1 : -1]) == "\n    return c"


def test_no_fim_tokens_is_an_error_about_suffix(hf_home: Path) -> None:
    with pytest.raises(InvalidRequest) as info:
        ChatRenderer(load_tokenizer(hf_home, CHAT_MODEL_ID)).encode_fim("a", "b")
    assert info.value.param == "suffix"


def test_detokenize_keeps_special_tokens_and_refuses_ids_outside_the_vocabulary(hf_home: Path) -> None:
    tokenizer = load_tokenizer(hf_home, CHAT_MODEL_ID)
    renderer = ChatRenderer(tokenizer)
    ids = renderer.encode_chat([{"role": "user", "content": "Hello"}])
    assert renderer.detokenize(ids) == renderer.render_chat([{"role": "user", "content": "Hello"}])
    assert "<|im_start|>" in renderer.detokenize(ids) and "<|im_start|>" not in renderer.decode(ids)
    for bad in (len(tokenizer), -1):
        with pytest.raises(InvalidRequest, match=r"tokens\[1\]") as info:
            renderer.detokenize([ids[0], bad])
        assert info.value.param == "tokens"


def test_token_strings_spell_each_id_as_the_vocabulary_does(hf_home: Path) -> None:
    tokenizer = load_tokenizer(hf_home, CHAT_MODEL_ID)
    renderer = ChatRenderer(tokenizer)
    ids = renderer.encode_text("Hello world")
    strings = renderer.token_strings(ids)
    assert len(strings) == len(ids) and tokenizer.convert_tokens_to_ids(strings) == ids


def test_special_tokens_add_what_the_tokenizer_adds_to_a_bare_text(hf_home: Path) -> None:
    tokenizer = load_tokenizer(hf_home, CHAT_MODEL_ID)
    renderer = ChatRenderer(tokenizer)
    messages = [{"role": "user", "content": "Hello"}]
    plain = renderer.encode_chat(messages)
    assert renderer.encode_chat(messages, special_tokens=True) == tokenizer(renderer.render_chat(messages))["input_ids"]
    assert plain == tokenizer(renderer.render_chat(messages), add_special_tokens=False)["input_ids"]


class CountingTokenizer:
    """The real tokenizer, with every call's text length recorded."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self.lengths: list[int] = []

    def __call__(self, text: str, **kwargs: Any) -> Any:
        self.lengths.append(len(text))
        return self._tokenizer(text, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)


def test_the_longest_token_bounds_every_tokens_text(hf_home: Path) -> None:
    tokenizer = load_tokenizer(hf_home, CHAT_MODEL_ID)
    longest = longest_token_chars(tokenizer)
    text = "Hello there, general Kenobi! " * 20 + "<|im_start|>user\n" + "ÿ€🙂" * 10
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert all(len(tokenizer.decode([token])) <= longest for token in ids)
    assert len(text) <= len(ids) * longest


def test_a_prompt_past_what_the_context_could_hold_is_refused_untokenized(hf_home: Path) -> None:
    counting = CountingTokenizer(load_tokenizer(hf_home, CHAT_MODEL_ID))
    renderer = ChatRenderer(counting)
    renderer.bound_prompts(64)
    limit = renderer.max_prompt_chars
    assert limit == 64 * longest_token_chars(counting)
    assert renderer.encode_text("x" * limit)  # at the bound: tokenized (the context check follows)
    assert counting.lengths == [limit]
    for call, param in (
        (lambda: renderer.encode_text("x" * (limit + 1)), "prompt"),
        (lambda: renderer.encode_chat([{"role": "user", "content": "x" * limit}]), "messages"),
    ):
        with pytest.raises(PromptTooLong) as info:
            call()
        assert info.value.status == 400 and info.value.param == param
        assert "64 tokens" in info.value.message
    assert counting.lengths == [limit]  # none of the refused prompts reached the tokenizer


def test_an_unbounded_renderer_tokenizes_everything(hf_home: Path) -> None:
    renderer = ChatRenderer(load_tokenizer(hf_home, CHAT_MODEL_ID))
    assert len(renderer.encode_text("word " * 5000)) >= 5000 // 8
