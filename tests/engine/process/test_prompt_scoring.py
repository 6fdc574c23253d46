"""Prompt scoring on the real tiny model: the values are the model's own log-softmax of one whole forward pass,
however the prompt is cut into chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from app.engine.process.prompt_scoring import describe, score_prompt
from tests.support.models import NEVER_EOS_MODEL_ID, load_model_and_tokenizer


@pytest.fixture(scope="module")
def never_eos(hf_home: Path) -> tuple[Any, Any]:
    return load_model_and_tokenizer(hf_home, NEVER_EOS_MODEL_ID)


def reference_logprobs(model: Any, prompt: list[int]) -> torch.Tensor:
    """[len(prompt), vocab] log-softmax of one forward over the whole prompt."""
    with torch.inference_mode():
        logits = model(torch.tensor([prompt])).logits[0].float()
    return torch.log_softmax(logits, dim=-1)


def test_scores_equal_the_log_softmax_of_one_whole_forward(never_eos: tuple[Any, Any]) -> None:
    model, tokenizer = never_eos
    prompt = tokenizer("The quick brown fox jumps over the lazy dog.", add_special_tokens=False)["input_ids"]
    vocab = model.get_output_embeddings().weight.shape[0]
    expected = reference_logprobs(model, prompt)
    scores = score_prompt(model, prompt, 3, vocab)
    assert len(scores) == len(prompt) - 1
    for position, (token, score) in enumerate(zip(prompt[1:], scores, strict=True)):
        row = expected[position]
        assert score.logprob == pytest.approx(float(row[token]), abs=1e-5)
        assert score.rank == int((row > row[token]).sum()) + 1
        top_values, top_ids = torch.topk(row, 3)
        assert [t for t, _ in score.top] == top_ids.tolist()
        assert [lp for _, lp in score.top] == pytest.approx(top_values.tolist(), abs=1e-5)


@pytest.mark.parametrize("chunk", [1, 2, 5])
def test_chunks_of_the_prompt_score_as_the_whole_does(never_eos: tuple[Any, Any], chunk: int) -> None:
    model, tokenizer = never_eos
    prompt = tokenizer("Paris is the capital of France, and Rome of Italy.", add_special_tokens=False)["input_ids"]
    vocab = model.get_output_embeddings().weight.shape[0]
    whole = score_prompt(model, prompt, 2, vocab)
    chunked = score_prompt(model, prompt, 2, vocab, chunk_tokens=chunk)
    assert [s.rank for s in chunked] == [s.rank for s in whole]
    assert [s.logprob for s in chunked] == pytest.approx([s.logprob for s in whole], abs=1e-5)
    assert [[t for t, _ in s.top] for s in chunked] == [[t for t, _ in s.top] for s in whole]


def test_a_one_token_prompt_has_nothing_to_score(never_eos: tuple[Any, Any]) -> None:
    model, _ = never_eos
    assert score_prompt(model, [5], 2, 100) == []


def test_describe_names_every_token_and_leaves_the_first_unscored(never_eos: tuple[Any, Any]) -> None:
    model, tokenizer = never_eos
    prompt = tokenizer("Hello there, friend", add_special_tokens=False)["input_ids"]
    vocab = model.get_output_embeddings().weight.shape[0]
    described = describe(prompt, score_prompt(model, prompt, 2, vocab), tokenizer.decode)
    assert [entry.token_id for entry in described] == prompt
    assert "".join(entry.token for entry in described) == tokenizer.decode(prompt)
    first, *rest = described
    assert first.logprob is None and first.rank is None and first.top == ()
    for entry in rest:
        assert entry.logprob is not None and entry.logprob <= 0.0 and entry.rank is not None and entry.rank >= 1
        assert len(entry.top) == 2 and entry.top[0].token == tokenizer.decode([entry.top[0].token_id])
