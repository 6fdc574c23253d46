"""The embeddings service's own arithmetic and checks: Matryoshka ``dimensions`` and the base64 encoding."""

from __future__ import annotations

import base64
import dataclasses

import numpy as np
import pytest

from app.engine.types import ModelInfo
from app.errors import InvalidRequest
from app.protocol.embeddings import EmbeddingRequest
from app.serving.embeddings import check_dimensions, shaped

INFO = ModelInfo(name="m", max_context=32, eos_token_ids=(), generation_defaults={}, task="embed", embedding_size=8)


def test_dimensions_need_a_matryoshka_model() -> None:
    check_dimensions(INFO, None)
    with pytest.raises(InvalidRequest, match="not a Matryoshka model") as refused:
        check_dimensions(INFO, 4)
    assert refused.value.param == "dimensions"


def test_dimensions_within_the_size_or_the_listed_ones() -> None:
    any_size = dataclasses.replace(INFO, matryoshka_dimensions=())
    check_dimensions(any_size, 3)
    with pytest.raises(InvalidRequest, match="1 to 8"):
        check_dimensions(any_size, 9)
    listed = dataclasses.replace(INFO, matryoshka_dimensions=(2, 4))
    check_dimensions(listed, 4)
    with pytest.raises(InvalidRequest, match="2, 4"):
        check_dimensions(listed, 3)


def test_shaped_truncates_renormalizes_and_encodes() -> None:
    vector = np.array([3.0, 4.0, 12.0], dtype=np.float32)
    assert shaped(vector, None, "float") == [3.0, 4.0, 12.0]
    assert shaped(vector, 2, "float") == pytest.approx([0.6, 0.8])
    raw = base64.b64decode(shaped(vector, 2, "base64"))  # type: ignore[arg-type]
    assert np.frombuffer(raw, dtype="<f4").tolist() == pytest.approx([0.6, 0.8])
    assert raw == np.array([0.6, 0.8], dtype="<f4").tobytes()


@pytest.mark.parametrize(
    "value", ["one text", ["two", "texts"], [1, 2, 3], [[1, 2], [3]]], ids=["text", "texts", "ids", "id-lists"]
)
def test_every_input_form_parses(value: object) -> None:
    assert EmbeddingRequest.model_validate({"input": value}).input == value
