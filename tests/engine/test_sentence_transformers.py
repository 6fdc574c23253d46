"""Reading a sentence-transformers layout: the pooling mode, normalization and length cap, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.engine.sentence_transformers import LayoutError, PoolingLayout, has_layout, read_layout

TRANSFORMER = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
POOLING = {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
NORMALIZE = {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}


def lay_out(folder: Path, modules: list[dict], pooling: dict, bert_config: dict | None = None) -> Path:
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 8, **pooling}))
    if bert_config is not None:
        (folder / "sentence_bert_config.json").write_text(json.dumps(bert_config))
    return folder


@pytest.mark.parametrize(
    ("key", "mode"),
    [
        ("pooling_mode_cls_token", "cls"),
        ("pooling_mode_mean_tokens", "mean"),
        ("pooling_mode_max_tokens", "max"),
        ("pooling_mode_lasttoken", "lasttoken"),
    ],
)
def test_each_pooling_mode_is_read(tmp_path: Path, key: str, mode: str) -> None:
    lay_out(tmp_path, [TRANSFORMER, POOLING, NORMALIZE], {key: True}, {"max_seq_length": 256})
    assert read_layout(tmp_path) == PoolingLayout(mode, normalize=True, max_seq_length=256)


def test_without_normalize_or_a_length_cap(tmp_path: Path) -> None:
    lay_out(tmp_path, [TRANSFORMER, POOLING], {"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False})
    assert read_layout(tmp_path) == PoolingLayout("mean", normalize=False, max_seq_length=None)


def test_the_newer_single_pooling_mode_field(tmp_path: Path) -> None:
    lay_out(tmp_path, [TRANSFORMER, POOLING], {"pooling_mode": "lasttoken"})
    assert read_layout(tmp_path).mode == "lasttoken"  # type: ignore[union-attr]


def test_a_folder_without_the_layout(tmp_path: Path) -> None:
    assert not has_layout(tmp_path) and read_layout(tmp_path) is None
    (tmp_path / "modules.json").write_text("not json")
    assert not has_layout(tmp_path)


@pytest.mark.parametrize(
    ("modules", "pooling", "complaint"),
    [
        ([TRANSFORMER, POOLING], {"pooling_mode_weightedmean_tokens": True}, "weightedmean"),
        ([TRANSFORMER, POOLING], {"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}, r"mean\+max"),
        (
            [TRANSFORMER, POOLING, {"path": "2_Dense", "type": "sentence_transformers.models.Dense"}],
            {"pooling_mode_mean_tokens": True},
            "Dense",
        ),
    ],
)
def test_what_cannot_be_run_is_refused_by_name(tmp_path: Path, modules: list, pooling: dict, complaint: str) -> None:
    lay_out(tmp_path, modules, pooling)
    with pytest.raises(LayoutError, match=complaint):
        read_layout(tmp_path)
