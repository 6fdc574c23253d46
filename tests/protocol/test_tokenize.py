"""The tokenizer routes' wire schemas: token strings only when asked for, ids strictly integers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.protocol.tokenize import DetokenizeRequest, TokenizeRequest, TokenizeResponse


def test_token_strings_are_left_out_unless_asked_for() -> None:
    plain = TokenizeResponse(count=2, max_model_len=8, tokens=[1, 2])
    assert plain.model_dump(exclude_none=True) == {"count": 2, "max_model_len": 8, "tokens": [1, 2]}
    with_strs = TokenizeResponse(count=1, max_model_len=8, tokens=[1], token_strs=["a"])
    assert with_strs.model_dump(exclude_none=True)["token_strs"] == ["a"]


def test_the_form_defaults_are_left_to_the_service() -> None:
    req = TokenizeRequest.model_validate({"prompt": "hi"})
    assert (req.add_special_tokens, req.add_generation_prompt, req.continue_final_message) == (None, None, False)


@pytest.mark.parametrize("tokens", [[1.0], [True], ["1"], None])
def test_detokenize_takes_integers_only(tokens: object) -> None:
    with pytest.raises(ValidationError):
        DetokenizeRequest.model_validate({"tokens": tokens})
