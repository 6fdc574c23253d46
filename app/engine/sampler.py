"""Per-request token sampling: penalties, bias, temperature, top-k/top-p/min-p, own RNG.

Every request gets its own ``torch.Generator`` (seeded from ``seed`` when given), so a seed makes a
request reproducible whatever else runs, and nothing touches torch's global RNG.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import torch

from app.engine.types import SamplingParams


class RequestSampler:
    """Chooses the next token for one sequence from its last-position logits."""

    def __init__(
        self, params: SamplingParams, prompt_ids: Sequence[int], vocab_size: int, device: torch.device
    ) -> None:
        self.params = params
        self.vocab_size = vocab_size
        seed = params.seed if params.seed is not None else secrets.randbits(63)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        self._seen: torch.Tensor | None = None
        self._counts: torch.Tensor | None = None
        self._bias: torch.Tensor | None = None
        if params.repetition_penalty != 1.0:
            self._seen = torch.zeros(vocab_size, dtype=torch.bool, device=device)
            ids = torch.tensor([i for i in prompt_ids if 0 <= i < vocab_size], dtype=torch.long, device=device)
            self._seen[ids] = True
        if params.presence_penalty or params.frequency_penalty:
            self._counts = torch.zeros(vocab_size, dtype=torch.float32, device=device)
        if params.logit_bias:
            self._bias = torch.zeros(vocab_size, dtype=torch.float32, device=device)
            for token_id, bias in params.logit_bias.items():
                self._bias[token_id] = bias

    def observe(self, token_id: int) -> None:
        """Record a generated token for the penalties."""
        if self._seen is not None:
            self._seen[token_id] = True
        if self._counts is not None:
            self._counts[token_id] += 1.0

    def adjusted_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits after penalties and bias (what greedy decoding takes the argmax of)."""
        scores = logits[: self.vocab_size].float()
        p = self.params
        if self._seen is not None:
            penalised = torch.where(scores < 0, scores * p.repetition_penalty, scores / p.repetition_penalty)
            scores = torch.where(self._seen, penalised, scores)
        if self._counts is not None:
            scores = scores - p.frequency_penalty * self._counts - p.presence_penalty * (self._counts > 0).float()
        if self._bias is not None:
            scores = scores + self._bias
        return scores

    def sample(self, logits: torch.Tensor) -> int:
        scores = self.adjusted_logits(logits)
        p = self.params
        if p.greedy:
            return int(torch.argmax(scores))
        scores = scores / p.temperature
        if 0 < p.top_k < scores.numel():
            kth = torch.topk(scores, p.top_k).values[-1]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        if p.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            cumulative = torch.cumsum(sorted_probs, dim=-1)
            drop_sorted = (cumulative - sorted_probs) > p.top_p  # the first token always survives
            drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)
            probs = probs.masked_fill(drop, 0.0)
        if p.min_p > 0.0:
            probs = probs.masked_fill(probs < p.min_p * probs.max(), 0.0)
        return int(torch.multinomial(probs, 1, generator=self.generator))
