"""The pooling path's own rules: the length inputs are cut to, and the refusal of pooling models by the
generating endpoints."""

from __future__ import annotations

import pytest

from app.engine.types import ModelInfo
from app.errors import InvalidRequest
from app.serving.pooling import length_limit, refuse_pooling_model

INFO = ModelInfo(name="m", max_context=32, eos_token_ids=(), generation_defaults={}, task="embed")


def test_length_limit() -> None:
    assert length_limit(INFO, None) is None  # not cut: too long is an error
    assert length_limit(INFO, -1) == 32
    assert length_limit(INFO, 8) == 8
    for bad in (0, 33):
        with pytest.raises(InvalidRequest) as refused:
            length_limit(INFO, bad)
        assert refused.value.param == "truncate_prompt_tokens"


@pytest.mark.parametrize(("task", "endpoint"), [("embed", "/v1/embeddings"), ("score", "/v1/rerank")])
def test_generating_endpoints_refuse_pooling_models(task: str, endpoint: str) -> None:
    with pytest.raises(InvalidRequest, match=endpoint) as refused:
        refuse_pooling_model(ModelInfo(name="m", max_context=8, eos_token_ids=(), generation_defaults={}, task=task))
    assert refused.value.param == "model" and task in refused.value.message
    refuse_pooling_model(ModelInfo(name="m", max_context=8, eos_token_ids=(), generation_defaults={}))
