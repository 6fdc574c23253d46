"""Attention over a paged KV cache: one key and one value tensor per layer, ``[blocks x block_size, kv_heads,
head_dim]``, allocated once, and an attention function registered with transformers (``AttentionInterface``)
that writes a step's new keys and values into their slots and reads each sequence's past through its block
table.

A step is one ragged forward: the new tokens of every sequence (prefill chunks and decode tokens alike) are
concatenated into one row of ``T`` tokens, each with its own position. Decode tokens attend together (one
batched call over their gathered pasts, the shorter ones masked); each prefill chunk attends alone, causally,
over its past and itself. Nothing is padded in the cache and nothing is concatenated onto it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import AttentionInterface

ATTENTION = "hfserve_paged"


@dataclass(frozen=True, slots=True)
class Entry:
    """One sequence's part of a step: its block table, how many of its tokens are cached already, the new tokens."""

    blocks: Sequence[int]
    start: int
    tokens: Sequence[int]


@dataclass(slots=True)
class Chunk:
    rows: slice  # its new tokens in the step's row
    slots: torch.Tensor  # [start + len] cache slots of its whole sequence so far
    mask: torch.Tensor  # [len, start + len] causal


@dataclass(slots=True)
class StepPlan:
    """Where a step's tokens go and what each attends to, built once and read by every layer."""

    pool: PagedKV
    write: torch.Tensor  # [T] the slot of each new token
    decode_rows: torch.Tensor | None  # [B] positions in the step of the decode tokens
    decode_slots: torch.Tensor | None  # [B, L] the slots each decode token attends to
    decode_mask: torch.Tensor | None  # [B, 1, 1, L]
    chunks: list[Chunk]


class PagedKV:
    """The pool's tensors, one key and one value tensor per layer, made at the layer's first forward (their shape is
    the one the model computes: a tensor-parallel shard's heads)."""

    def __init__(self, num_blocks: int, block_size: int, device: torch.device, dtype: torch.dtype) -> None:
        self.num_blocks, self.block_size = num_blocks, block_size
        self.device, self.dtype = device, dtype
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}

    @property
    def bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.keys.values(), *self.values.values()))

    def layer(self, index: int, heads: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index not in self.keys:
            shape = (self.num_blocks * self.block_size, heads, dim)
            self.keys[index] = torch.zeros(shape, device=self.device, dtype=self.dtype)
            self.values[index] = torch.zeros(shape, device=self.device, dtype=self.dtype)
        return self.keys[index], self.values[index]

    def copy_block(self, source: int, target: int) -> None:
        size = self.block_size
        for tensors in (self.keys, self.values):
            for tensor in tensors.values():
                tensor[target * size : (target + 1) * size] = tensor[source * size : (source + 1) * size]

    def slots(self, blocks: Sequence[int], start: int, stop: int) -> list[int]:
        size = self.block_size
        return [blocks[p // size] * size + p % size for p in range(start, stop)]

    def plan(self, entries: Sequence[Entry]) -> StepPlan:
        device = self.device
        write: list[int] = []
        decode: list[tuple[int, list[int]]] = []
        chunks: list[Chunk] = []
        offset = 0
        for entry in entries:
            stop = entry.start + len(entry.tokens)
            write.extend(self.slots(entry.blocks, entry.start, stop))
            if len(entry.tokens) == 1:
                decode.append((offset, self.slots(entry.blocks, 0, stop)))
            else:
                length = len(entry.tokens)
                mask = torch.ones((length, stop), dtype=torch.bool, device=device).tril(entry.start)
                slots = torch.tensor(self.slots(entry.blocks, 0, stop), device=device)
                chunks.append(Chunk(slice(offset, offset + length), slots, mask))
            offset += len(entry.tokens)
        plan = StepPlan(self, torch.tensor(write, device=device), None, None, None, chunks)
        if decode:
            width = max(len(slots) for _, slots in decode)
            padded = [slots + [0] * (width - len(slots)) for _, slots in decode]
            lengths = torch.tensor([len(slots) for _, slots in decode], device=device)
            plan.decode_rows = torch.tensor([row for row, _ in decode], device=device)
            plan.decode_slots = torch.tensor(padded, device=device)
            plan.decode_mask = (torch.arange(width, device=device)[None, :] < lengths[:, None])[:, None, None, :]
        return plan


def paged_attention(
    module: Any,
    query: torch.Tensor,  # [1, heads, T, dim]
    key: torch.Tensor,  # [1, kv_heads, T, dim]
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    paged: StepPlan | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """The attention function transformers calls in every layer; returns ``[1, T, heads, dim]``."""
    assert paged is not None, "the paged attention runs only inside a paged step"
    keys, values = paged.pool.layer(module.layer_idx, key.shape[1], key.shape[3])
    keys.index_copy_(0, paged.write, key[0].transpose(0, 1).to(keys.dtype))
    values.index_copy_(0, paged.write, value[0].transpose(0, 1).to(values.dtype))
    out = query.new_empty(query.shape[2], query.shape[1], query.shape[3])  # [T, heads, dim]
    if paged.decode_rows is not None:
        assert paged.decode_slots is not None
        q = query[0].index_select(1, paged.decode_rows).transpose(0, 1)[:, :, None, :]  # [B, heads, 1, dim]
        k = keys[paged.decode_slots].transpose(1, 2)  # [B, kv_heads, L, dim]
        v = values[paged.decode_slots].transpose(1, 2)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=paged.decode_mask, scale=scaling, enable_gqa=True)
        out[paged.decode_rows] = o[:, :, 0, :]
    for chunk in paged.chunks:
        q = query[:, :, chunk.rows, :]
        k = keys[chunk.slots].transpose(0, 1)[None]
        v = values[chunk.slots].transpose(0, 1)[None]
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=chunk.mask, scale=scaling, enable_gqa=True)
        out[chunk.rows] = o[0].transpose(0, 1)
    return out[None], None


AttentionInterface.register(ATTENTION, paged_attention)
