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
    logits = runner.prefill(prompts, [1, 2], None)
    assert logits.shape[0] == 3
    torch.testing.assert_close(logits[0], last_logits(model, prompts[0]), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(logits[1], last_logits(model, prompts[1]), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(logits[2], logits[1])
    runner.join()
    assert (runner.width, runner.kv_tokens) == (5, 15)  # three rows, padded to the longest prompt
    step = runner.decode([1, 2, 3])  # each row at its own position: the short rows' padding is masked
    torch.testing.assert_close(step[0], last_logits(model, [*prompts[0], 1]), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(step[1], last_logits(model, [*prompts[1], 2]), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(step[2], last_logits(model, [*prompts[1], 3]), atol=1e-4, rtol=1e-4)


@torch.inference_mode()
def test_chunked_prefill_then_decode_beside_another_row_matches_the_model(model: Any) -> None:
    runner = ModelRunner(model, pad_id=0)
    short, long = [5, 6], list(range(20, 45))
    logits = runner.prefill([short], [1], None)
    runner.join()
    short_next = int(logits[0].argmax())
    for offset in range(0, len(long), 10):
        chunk_logits = runner.prefill_chunk(long[offset : offset + 10], offset)
    torch.testing.assert_close(chunk_logits[0], last_logits(model, long), atol=1e-4, rtol=1e-4)
    runner.stage_chunked(len(long), 1)
    runner.join()
    long_next = int(chunk_logits[0].argmax())
    assert runner.width == len(long)
    step = runner.decode([short_next, long_next])
    torch.testing.assert_close(step[0], last_logits(model, [*short, short_next]), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(step[1], last_logits(model, [*long, long_next]), atol=1e-4, rtol=1e-4)
    runner.keep([1])
    assert runner.width == len(long) + 1  # the short row's padding went with it


@torch.inference_mode()
def test_a_dropped_chunk_and_discarded_rows_leave_nothing_behind(model: Any) -> None:
    runner = ModelRunner(model, pad_id=0)
    runner.prefill_chunk([20, 21, 22], 0)
    runner.drop_chunk()
    with pytest.raises(AssertionError):
        runner.stage_chunked(3, 1)
    runner.prefill([[5, 6]], [2], None)
    runner.discard()
    with pytest.raises(AssertionError):
        runner.join()
    restarted = runner.prefill_chunk([30, 31], 0)  # offset 0 starts over, whatever came before
    torch.testing.assert_close(restarted[0], last_logits(model, [30, 31]), atol=1e-4, rtol=1e-4)
    assert runner.kv_tokens == 0
