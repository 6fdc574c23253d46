"""The model runner's forward passes against the model's own: padded prefill of several prompts, repeated
choices, chunked prefill, and decode steps of a batch whose rows joined at different times."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from app.engine.process.model_runner import ModelRunner
from tests.support.models import NEVER_EOS_MODEL_ID, load_model_and_tokenizer


@pytest.fixture(scope="module")
def model(hf_home: Path) -> Any:
    return load_model_and_tokenizer(hf_home, NEVER_EOS_MODEL_ID)[0]


def last_logits(model: Any, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0, -1]


@torch.inference_mode()
def test_prefill_of_several_prompts_matches_each_alone_and_repeats_choices(model: Any) -> None:
    runner = ModelRunner(model, pad_id=0)
    prompts = [[5, 6, 7, 8, 9], [10, 11]]
    _, mask, logits = runner.prefill(prompts, [1, 2], None)
    assert mask.shape == (3, 5) and mask[1:].sum(dim=1).tolist() == [2, 2]
    torch.testing.assert_close(logits[0], last_logits(model, prompts[0]), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(logits[1], last_logits(model, prompts[1]), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(logits[2], logits[1])


@torch.inference_mode()
def test_chunked_prefill_then_decode_beside_another_row_matches_the_model(model: Any) -> None:
    runner = ModelRunner(model, pad_id=0)
    short, long = [5, 6], list(range(20, 45))
    cache, mask, logits = runner.prefill([short], [1], None)
    runner.join(cache, mask)
    short_next = int(logits[0].argmax())
    chunked = runner.new_cache()
    for offset in range(0, len(long), 10):
        chunk_logits = runner.prefill_chunk(chunked, long[offset : offset + 10], offset)
    torch.testing.assert_close(chunk_logits[0], last_logits(model, long), atol=1e-4, rtol=1e-4)
    mask, rows = runner.chunked_rows(chunked, len(long), 1, chunk_logits)
    runner.join(chunked, mask)
    long_next = int(rows[0].argmax())
    assert runner.width == len(long)
    step = runner.decode([short_next, long_next])
    torch.testing.assert_close(step[0], last_logits(model, [*short, short_next]), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(step[1], last_logits(model, [*long, long_next]), atol=1e-4, rtol=1e-4)
    runner.keep([1])
    assert runner.width == len(long) + 1  # the short row's padding went with it
