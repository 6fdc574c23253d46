"""Prompt rendering: fill-in-the-middle with a tokenizer's own FIM tokens; detokenizing and token strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine.client.renderer import ChatRenderer
from app.errors import InvalidRequest
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
