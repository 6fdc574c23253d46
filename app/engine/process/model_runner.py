"""The forward passes of one model (``ModelRunner``) and the running batch's KV cache (``KVBatch``: one
left-padded ``DynamicCache`` plus an attention mask).

Rows join after their own prefill (their cache is left-padded to the batch width and concatenated) and
leave between steps (their rows are dropped, then all-padding columns on the left are trimmed). Each
row keeps its own positions: the next position of a row is its number of real tokens, so left padding
never shifts rotary positions.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from app.engine.process.cpu_threads import cpu_threads
from app.engine.process.prompt_scoring import PositionScore, score_prompt


def mergeable(cache: DynamicCache) -> bool:
    """Plain full-attention layers only: sliding-window and linear-attention caches cannot be re-padded."""
    return all(type(layer) is DynamicLayer for layer in cache.layers)


def cache_argument(model: Any) -> str:
    """The name the model's forward takes its cache by: ``cache`` (transformers 5.25 deprecates ``past_key_values``),
    or ``past_key_values`` for code that predates it (remote code)."""
    return _cache_argument(type(model))


@functools.cache
def _cache_argument(model_class: type) -> str:
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def _pad_left(tensor: torch.Tensor, amount: int, dim: int) -> torch.Tensor:
    if amount == 0:
        return tensor
    pad = [0, 0] * (tensor.dim() - 1 - dim % tensor.dim()) + [amount, 0]
    return F.pad(tensor, pad)


class KVBatch:
    """KV cache, attention mask and lengths of the rows being decoded together."""

    def __init__(self, model: Any, *, prebuilt_masks: bool = True) -> None:
        self._model = model
        self.prebuilt_masks = prebuilt_masks
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None  # [rows, width], 1 = a real token
        self.lengths: torch.Tensor | None = None  # [rows], real tokens per row

    @property
    def rows(self) -> int:
        return 0 if self.mask is None else int(self.mask.shape[0])

    @property
    def width(self) -> int:
        return 0 if self.mask is None else int(self.mask.shape[1])

    def add(self, cache: DynamicCache, mask: torch.Tensor) -> None:
        """Append rows prefilled elsewhere (``mask``: [rows, width] of their own cache)."""
        if self.cache is None or self.mask is None:
            self.cache, self.mask = cache, mask
        else:
            width = max(self.width, int(mask.shape[1]))
            grow_old, grow_new = width - self.width, width - int(mask.shape[1])
            for old, new in zip(self.cache.layers, cache.layers, strict=True):
                old.keys = torch.cat([_pad_left(old.keys, grow_old, -2), _pad_left(new.keys, grow_new, -2)])
                old.values = torch.cat([_pad_left(old.values, grow_old, -2), _pad_left(new.values, grow_new, -2)])
            self.mask = torch.cat([_pad_left(self.mask, grow_old, 1), _pad_left(mask, grow_new, 1)])
        self.lengths = self.mask.sum(dim=1)

    def keep(self, indices: Sequence[int]) -> None:
        """Keep only ``indices`` (in that order); trims padding no remaining row needs."""
        if not indices:
            self.cache = self.mask = self.lengths = None
            return
        assert self.cache is not None and self.mask is not None
        index = torch.tensor(list(indices), dtype=torch.long, device=self.mask.device)
        self.mask = self.mask.index_select(0, index)
        lengths = self.mask.sum(dim=1)
        unused = self.width - int(lengths.max())
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, index)[..., unused:, :]
            layer.values = layer.values.index_select(0, index)[..., unused:, :]
        self.mask = self.mask[:, unused:]
        self.lengths = lengths

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """One decode step for every row (``tokens``: [rows] last tokens); returns [rows, vocab] logits."""
        assert self.mask is not None and self.lengths is not None
        ones = torch.ones((self.rows, 1), dtype=self.mask.dtype, device=self.mask.device)
        attention = torch.cat([self.mask, ones], dim=1)
        out = self._model(
            input_ids=tokens[:, None],
            attention_mask=self._decode_mask(attention),
            position_ids=self.lengths[:, None],
            use_cache=True,
            **{cache_argument(self._model): self.cache},
        )
        self.mask, self.lengths = attention, self.lengths + 1
        return out.logits[:, -1]

    def _decode_mask(self, attention: torch.Tensor) -> torch.Tensor:
        """The 4D mask of a one-token step, built directly (transformers passes a 4D mask through as-is):
        its generic builder evaluates per-element mask functions and cost a quarter of each step.
        Sliding-window models (one row at a time, see ``mergeable``) keep the 2D mask and the builder."""
        implementation = getattr(self._model.config, "_attn_implementation", None)
        if not self.prebuilt_masks:
            return attention
        if implementation == "sdpa":
            return attention.bool()[:, None, None, :]
        if implementation == "eager":
            dtype = self._model.dtype
            return (1 - attention[:, None, None, :]).to(dtype) * torch.finfo(dtype).min
        return attention  # other kernels (flash attention) take the 2D mask cheaply


def media_tensors(model: Any, inputs: Mapping[str, Any] | None) -> dict[str, torch.Tensor]:
    """A request's processor outputs (numpy) as tensors on the model's device, floats in its dtype."""
    tensors = {}
    for key, value in (inputs or {}).items():
        tensor = torch.from_numpy(np.ascontiguousarray(value)).to(model.device)
        tensors[key] = tensor.to(model.dtype) if tensor.is_floating_point() else tensor
    return tensors


def prefill(
    model: Any, prompts: Sequence[Sequence[int]], pad_id: int, inputs: Mapping[str, Any] | None = None
) -> tuple[DynamicCache, torch.Tensor, torch.Tensor]:
    """Prefill several prompts in one left-padded forward: (cache, mask, last-position logits).
    ``inputs``: the media inputs (pixel_values, input_features, ...) of a single prompt."""
    device = model.device
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((len(prompts), width), dtype=torch.long, device=device)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long, device=device)
        mask[row, width - len(prompt) :] = 1
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
        **{cache_argument(model): cache},
        **media_tensors(model, inputs),
    )
    return cache, mask, out.logits[:, -1]


def prefill_chunk(model: Any, cache: DynamicCache, chunk: Sequence[int], offset: int) -> torch.Tensor:
    """Extend one long prompt's own cache by ``chunk`` (starting at position ``offset``); last logits."""
    device = model.device
    ids = torch.tensor([list(chunk)], dtype=torch.long, device=device)
    positions = torch.arange(offset, offset + len(chunk), device=device)[None, :]
    kwargs = {cache_argument(model): cache}
    out = model(input_ids=ids, position_ids=positions, use_cache=True, logits_to_keep=1, **kwargs)
    return out.logits[:, -1]


def repeat_rows(cache: DynamicCache, mask: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
    """Repeat row i ``counts[i]`` times (the n choices of a request share its prefill); returns the mask."""
    if all(count == 1 for count in counts):
        return mask
    index = torch.repeat_interleave(
        torch.arange(len(counts), device=mask.device), torch.tensor(list(counts), device=mask.device)
    )
    for layer in cache.layers:
        layer.keys = layer.keys.index_select(0, index)
        layer.values = layer.values.index_select(0, index)
    return mask.index_select(0, index)


def pad_id(tokenizer: Any) -> int:
    """The id left padding uses: the tokenizer's pad token, else 0 (padded positions are masked anyway)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


class ModelRunner:
    """Runs the model: prefills of newcomers (several whole prompts in one padded forward, or one chunk of a
    long prompt in its own cache) and one decode step of the running batch. It decides nothing: the
    scheduler picks who is prefilled, the batched engine samples and emits.

    It keeps every tensor of its own (the running batch, the rows prefilled and waiting to join it, the long
    prompt's cache), so every call takes and returns plain values: a call can be replayed on another
    process's shard of the same model (tensor parallelism) and leaves the same state there.
    """

    def __init__(self, model: Any, pad_id: int) -> None:
        self.model = model
        self._pad = pad_id
        self.vocab_size = int(model.get_output_embeddings().weight.shape[0])
        # models whose caches cannot be re-padded decode one row at a time
        self.batchable = mergeable(DynamicCache(config=model.config))
        self._batch = KVBatch(model, prebuilt_masks=self.batchable)
        self._staged: tuple[DynamicCache, torch.Tensor] | None = None  # prefilled rows waiting to join
        self._chunk_cache: DynamicCache | None = None  # the long prompt being prefilled chunk by chunk

    @property
    def device(self) -> torch.device:
        return torch.device(self.model.device)

    @property
    def width(self) -> int:
        """The running batch's cache width (its longest row)."""
        return self._batch.width

    @property
    def kv_tokens(self) -> int:
        """Cache slots the running batch holds: rows x width."""
        return self._batch.rows * self._batch.width

    def prefill(
        self, prompts: Sequence[Sequence[int]], counts: Sequence[int], inputs: Mapping[str, Any] | None
    ) -> torch.Tensor:
        """Prefill ``prompts`` together, prompt i repeated ``counts[i]`` times (its choices), and stage the rows
        to ``join``; returns their last-position logits, one row per choice. ``inputs``: a single prompt's media."""
        cpu_threads.step(prefill_tokens=sum(len(prompt) for prompt in prompts))
        cache, mask, logits = prefill(self.model, prompts, self._pad, inputs)
        self._staged = cache, repeat_rows(cache, mask, counts)
        index = torch.repeat_interleave(torch.arange(len(prompts)), torch.tensor(list(counts)))
        return logits.index_select(0, index.to(logits.device))

    def prefill_chunk(self, chunk: Sequence[int], offset: int) -> torch.Tensor:
        """Extend the long prompt's cache by ``chunk`` (``offset`` 0 starts a new prompt); last logits."""
        if offset == 0 or self._chunk_cache is None:
            self._chunk_cache = DynamicCache(config=self.model.config)
        cpu_threads.step(prefill_tokens=len(chunk))
        return prefill_chunk(self.model, self._chunk_cache, chunk, offset)

    def stage_chunked(self, length: int, count: int) -> None:
        """The long prompt is whole (``length`` tokens): stage it as ``count`` rows to ``join``."""
        cache, self._chunk_cache = self._chunk_cache, None
        assert cache is not None, "no prompt is being prefilled in chunks"
        mask = torch.ones((1, length), dtype=torch.long, device=self.model.device)
        self._staged = cache, repeat_rows(cache, mask, [count])

    def drop_chunk(self) -> None:
        """Forget the long prompt's cache (it was aborted, failed, or will be prefilled again)."""
        self._chunk_cache = None

    def join(self) -> None:
        """The staged rows join the running batch (after its last rows)."""
        assert self._staged is not None, "nothing was prefilled"
        (cache, mask), self._staged = self._staged, None
        self._batch.add(cache, mask)

    def discard(self) -> None:
        """Drop the staged rows (they could not join)."""
        self._staged = None

    def keep(self, indices: Sequence[int]) -> None:
        self._batch.keep(indices)

    def decode(self, tokens: Sequence[int]) -> torch.Tensor:
        """One decode step of every running row (``tokens``: each row's last token): [rows, vocab] logits."""
        cpu_threads.step(prefill_tokens=0)
        return self._batch.step(torch.tensor(list(tokens), dtype=torch.long, device=self.model.device))

    def score_prompt(self, prompt: Sequence[int], top_k: int) -> list[PositionScore]:
        """A prompt's logprobs (``prompt_scoring``): a forward over it in its own cache, apart from the batch."""
        return score_prompt(self.model, prompt, top_k, self.vocab_size, argument=cache_argument(self.model))
