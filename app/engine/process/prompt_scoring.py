"""Prompt logprobs: how likely the model found each prompt token, given the tokens before it.

A request that asks for them (``SamplingParams.prompt_logprobs``, e.g. completions' ``echo`` with
``logprobs``, what evaluation harnesses send) is scored once, when the engine takes it in: a forward pass
over its prompt in its own cache, one chunk of positions at a time, so that the logits held at once stay
``chunk x vocab`` however long the prompt is. Each position's log-softmax gives the next prompt token's
logprob, its rank and the ``top_k`` most likely tokens there. This pass is separate from the request's
prefill (which keeps only the last position's logits), so a scored prompt costs a second prefill's compute.

``score_prompt`` returns plain values (ids and floats), which a tensor-parallel follower rank computes too
and drops (it must run the same forward, whose collectives rank 0 enters); ``describe`` turns them into the
engine's typed ``PromptLogprob``s with each token's text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch

from app.engine.types import PromptLogprob, TokenLogprob

# Positions scored per forward: bounds the logits (and their log-softmax) held at once to chunk x vocab floats.
SCORE_CHUNK_TOKENS = 512


class PositionScore(NamedTuple):
    """The prompt token at one position (after the first): its logprob, rank and the most likely tokens."""

    logprob: float
    rank: int
    top: list[tuple[int, float]]


def score_prompt(
    model: Any,
    prompt: Sequence[int],
    top_k: int,
    vocab_size: int,
    chunk_tokens: int = SCORE_CHUNK_TOKENS,
    *,
    argument: str = "cache",
) -> list[PositionScore]:
    """One ``PositionScore`` per prompt token after the first, from the model's own log-softmax (float32, over
    the ``vocab_size`` valid ids). Runs under ``torch.inference_mode`` in its own cache; nothing is kept.
    ``argument``: the name the model's forward takes its cache by (``model_runner.cache_argument``)."""
    ids = torch.tensor([list(prompt)], dtype=torch.long, device=model.device)
    scores: list[PositionScore] = []
    cache = None
    with torch.inference_mode():
        for start in range(0, len(prompt) - 1, chunk_tokens):  # the last token predicts nothing in the prompt
            end = min(start + chunk_tokens, len(prompt) - 1)
            positions = torch.arange(start, end, device=model.device)[None, :]
            out = model(input_ids=ids[:, start:end], position_ids=positions, use_cache=True, **{argument: cache})
            cache = out.past_key_values
            logprobs = torch.log_softmax(out.logits[0, :, :vocab_size].float(), dim=-1)
            scores.extend(_position_scores(logprobs, ids[0, start + 1 : end + 1], top_k))
            del out, logprobs
    return scores


def _position_scores(logprobs: torch.Tensor, targets: torch.Tensor, top_k: int) -> list[PositionScore]:
    """``logprobs``: [positions, vocab]; ``targets``: the prompt token that follows each position."""
    chosen = logprobs.gather(1, targets[:, None])
    ranks = (logprobs > chosen).sum(dim=-1) + 1
    if top_k:
        values, indices = torch.topk(logprobs, min(top_k, logprobs.shape[-1]), dim=-1)
        tops = [list(zip(i, v, strict=True)) for i, v in zip(indices.tolist(), values.tolist(), strict=True)]
    else:
        tops = [[] for _ in range(len(targets))]
    return [
        PositionScore(lp, rank, top) for lp, rank, top in zip(chosen[:, 0].tolist(), ranks.tolist(), tops, strict=True)
    ]


def describe(
    prompt: Sequence[int], scores: Sequence[PositionScore], decode: Callable[[list[int]], str]
) -> tuple[PromptLogprob, ...]:
    """One ``PromptLogprob`` per prompt token (the first unscored), each token with its own text."""
    texts: dict[int, str] = {}

    def text(token_id: int) -> str:
        if token_id not in texts:
            texts[token_id] = decode([token_id])
        return texts[token_id]

    scored = (
        PromptLogprob(t, text(t), s.logprob, s.rank, tuple(TokenLogprob(i, text(i), lp) for i, lp in s.top))
        for t, s in zip(prompt[1:], scores, strict=True)
    )
    return (PromptLogprob(prompt[0], text(prompt[0]), None, None), *scored)
