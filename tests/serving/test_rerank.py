"""How /v1/score pairs its texts (vLLM's rules)."""

from __future__ import annotations

import pytest

from app.errors import InvalidRequest
from app.protocol.rerank import RerankRequest, ScoreRequest
from app.serving.rerank import score_pairs


@pytest.mark.parametrize(
    ("text_1", "text_2", "pairs"),
    [
        ("q", "d", [("q", "d")]),
        ("q", ["a", "b"], [("q", "a"), ("q", "b")]),
        (["q"], ["a", "b"], [("q", "a"), ("q", "b")]),
        (["x", "y"], ["a", "b"], [("x", "a"), ("y", "b")]),
    ],
)
def test_pairs(text_1: object, text_2: object, pairs: list[tuple[str, str]]) -> None:
    assert score_pairs(ScoreRequest.model_validate({"text_1": text_1, "text_2": text_2})) == pairs


def test_unequal_lists_are_refused() -> None:
    with pytest.raises(InvalidRequest) as refused:
        score_pairs(ScoreRequest.model_validate({"text_1": ["x", "y"], "text_2": ["a", "b", "c"]}))
    assert refused.value.param == "text_1"


def test_documents_as_strings_or_objects() -> None:
    request = RerankRequest.model_validate({"query": "q", "documents": ["a", {"text": "b"}]})
    assert [doc if isinstance(doc, str) else doc.text for doc in request.documents] == ["a", "b"]
    assert request.return_documents and request.top_n is None
