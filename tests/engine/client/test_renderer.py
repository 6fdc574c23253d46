"""Prompt rendering: fill-in-the-middle with a tokenizer's own FIM tokens."""

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
