"""Token sampling for a whole batch, each row with its own parameters.

Temperature, top-k, top-p and min-p are applied to all rows at once with per-row parameter vectors.
Penalties and ``logit_bias`` touch only the rows that ask for them. A row is drawn by the exponential
race (``argmax(p / q)``, ``q ~ Exp(1)``), which equals sampling from ``p``: unseeded rows share the
engine's own generator, seeded rows draw their noise from their own ``torch.Generator``, so a seed
reproduces its output whatever else is in the batch. torch's global RNG is never touched.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from app.engine.process.constraints import GrammarMatcher
from app.engine.types import SamplingParams


class SequenceSampling:
    """One choice's sampling state: its parameters, its generator, what it has generated so far."""

    def __init__(
        self,
        params: SamplingParams,
        prompt_ids: Sequence[int],
        vocab_size: int,
        device: torch.device,
        index: int = 0,
        grammar: GrammarMatcher | None = None,
    ) -> None:
        self.params = params
        self.grammar = grammar
        self.generator: torch.Generator | None = None
        if params.seed is not None and not params.greedy:
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed((params.seed + index) % 2**64)  # choice i of n gets seed + i
        self._seen: torch.Tensor | None = None
        self._counts: torch.Tensor | None = None
        self._bias: tuple[torch.Tensor, torch.Tensor] | None = None
        self._forced: deque[int] = deque()  # tokens this row must take next, in order (a reasoning budget's end)
        if params.repetition_penalty != 1.0:
            self._seen = torch.zeros(vocab_size, dtype=torch.bool, device=device)
            ids = [i for i in prompt_ids if 0 <= i < vocab_size]
            self._seen[torch.tensor(ids, dtype=torch.long, device=device)] = True
        if params.presence_penalty or params.frequency_penalty:
            self._counts = torch.zeros(vocab_size, dtype=torch.float32, device=device)
        if params.logit_bias:
            ids = torch.tensor(list(params.logit_bias), dtype=torch.long, device=device)
            values = torch.tensor(list(params.logit_bias.values()), dtype=torch.float32, device=device)
            self._bias = (ids, values)

    @property
    def adjusts_logits(self) -> bool:
        return (
            self._seen is not None
            or self._counts is not None
            or self._bias is not None
            or self.grammar is not None
            or bool(self._forced)
        )

    def force(self, token_ids: Sequence[int]) -> None:
        """The next tokens of this row are ``token_ids``, whatever the model prefers (drawn with all else masked)."""
        self._forced.extend(token_ids)

    def observe(self, token_id: int) -> None:
        if self._forced and self._forced[0] == token_id:
            self._forced.popleft()
        if self.grammar is not None:
            self.grammar.consume(token_id)
        if self._seen is not None:
            self._seen[token_id] = True
        if self._counts is not None:
            self._counts[token_id] += 1.0

    def adjust(self, scores: torch.Tensor) -> torch.Tensor:
        """Penalties (transformers' multiplicative, OpenAI's additive) and bias for this row."""
        p = self.params
        if self._seen is not None:
            penalised = torch.where(scores < 0, scores * p.repetition_penalty, scores / p.repetition_penalty)
            scores = torch.where(self._seen, penalised, scores)
        if self._counts is not None:
            scores = scores - p.frequency_penalty * self._counts - p.presence_penalty * (self._counts > 0).float()
        if self._bias is not None:
            scores = scores.index_add(0, self._bias[0], self._bias[1])
        if self.grammar is not None:  # last: a bias must not re-allow what the grammar forbids
            scores = self.grammar.apply(scores)
        if self._forced:  # only the forced token remains
            forced = torch.full_like(scores, float("-inf"))
            forced[self._forced[0]] = 0.0
            return forced
        return scores


@dataclass(frozen=True, slots=True)
class Draw:
    """What the sampler chose for one row, with logprobs when the row asked for them."""

    token_id: int
    logprob: float | None = None
    top: tuple[tuple[int, float], ...] = ()


class BatchSampler:
    def __init__(self, vocab_size: int, device: torch.device) -> None:
        self.vocab_size = vocab_size
        self.device = device
        self._generator = torch.Generator(device=device)
        self._generator.manual_seed(secrets.randbits(63))

    def sample(self, logits: torch.Tensor, rows: Sequence[SequenceSampling]) -> list[Draw]:
        """``logits``: [len(rows), >= vocab_size] last-position logits; returns one draw per row."""
        raw = logits[:, : self.vocab_size].float()
        scores = raw
        adjusted = [i for i, row in enumerate(rows) if row.adjusts_logits]
        if adjusted:
            scores = raw.clone()
            for i in adjusted:
                scores[i] = rows[i].adjust(scores[i])
        greedy = torch.tensor([row.params.greedy for row in rows], device=self.device)
        chosen = torch.argmax(scores, dim=-1)
        if not bool(greedy.all()):
            chosen = torch.where(greedy, chosen, self._draw(scores, rows))
        tokens = chosen.tolist()
        return self._with_logprobs(raw, rows, tokens)

    def _draw(self, scores: torch.Tensor, rows: Sequence[SequenceSampling]) -> torch.Tensor:
        params = [row.params for row in rows]
        temperature = torch.tensor([1.0 if p.greedy else p.temperature for p in params], device=self.device)
        scores = scores / temperature[:, None]
        top_k = [p.top_k if 0 < p.top_k < self.vocab_size else 0 for p in params]
        if any(top_k):
            ks = torch.tensor(top_k, device=self.device)
            kth = torch.sort(scores, dim=-1, descending=True).values.gather(1, (ks - 1).clamp(min=0)[:, None])
            scores = scores.masked_fill((ks[:, None] > 0) & (scores < kth), float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        top_p = torch.tensor([p.top_p for p in params], device=self.device)
        if bool((top_p < 1.0).any()):
            sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
            drop_sorted = (torch.cumsum(sorted_probs, dim=-1) - sorted_probs) > top_p[:, None]
            probs = probs.masked_fill(torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted), 0.0)
        min_p = torch.tensor([p.min_p for p in params], device=self.device)
        if bool((min_p > 0).any()):
            probs = probs.masked_fill(probs < min_p[:, None] * probs.max(dim=-1, keepdim=True).values, 0.0)
        noise = torch.empty_like(probs)
        noise.exponential_(generator=self._generator)
        for i, row in enumerate(rows):
            if row.generator is not None:
                noise[i].exponential_(generator=row.generator)
        return torch.argmax(probs / noise, dim=-1)

    def _with_logprobs(self, raw: torch.Tensor, rows: Sequence[SequenceSampling], tokens: list[int]) -> list[Draw]:
        wanted = [i for i, row in enumerate(rows) if row.params.logprobs is not None]
        if not wanted:
            return [Draw(token) for token in tokens]
        draws = [Draw(token) for token in tokens]
        logprobs = torch.log_softmax(raw[wanted], dim=-1)
        k = max(rows[i].params.logprobs or 0 for i in wanted)
        top_values, top_ids = torch.topk(logprobs, k, dim=-1) if k else (None, None)
        for j, i in enumerate(wanted):
            count = rows[i].params.logprobs or 0
            top: tuple[tuple[int, float], ...] = ()
            if count and top_ids is not None and top_values is not None:
                top = tuple(zip(top_ids[j, :count].tolist(), top_values[j, :count].tolist(), strict=True))
            draws[i] = Draw(tokens[i], float(logprobs[j, tokens[i]]), top)
        return draws
