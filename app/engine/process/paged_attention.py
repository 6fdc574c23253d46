"""Attention over a paged KV cache: one key and one value tensor per layer, ``[blocks x block_size, kv_heads,
head_dim]``, allocated once, and an attention function registered with transformers (``AttentionInterface``)
that writes a step's new keys and values into their slots and reads each sequence's past through its block
table.

A step is one ragged forward: the new tokens of every sequence (prefill chunks and decode tokens alike) are
concatenated into one row of ``T`` tokens, each with its own position. Decode tokens of sequences that share
their first blocks attend as one group that reads the shared blocks once; the other decode tokens attend together
(one batched call over their gathered pasts, the shorter ones masked); each prefill chunk attends alone,
causally, over its past and itself. Nothing is padded in the cache and nothing is concatenated onto it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AttentionInterface

ATTENTION = "hfserve_paged"
_FUSED_DECODE_KEYS = 1 << 18  # float32 key elements below which one fused call beats the matrix products on CPU


@dataclass(frozen=True, slots=True)
class Entry:
    """One sequence's part of a step: its block table, how many of its tokens are cached already, the new tokens."""

    blocks: Sequence[int]
    start: int
    tokens: Sequence[int]


@dataclass(slots=True)
class Group:
    """Queries that attend together over one gather of the pool: a prefill chunk alone, or sequences that share a
    prefix (their shared blocks read once, each query masked to its own sequence, causally)."""

    rows: torch.Tensor | slice  # [Q] positions in the step's row
    slots: torch.Tensor | None  # [U] the cache slots its queries read; None: a prompt's first chunk (no past), which
    # reads the step's own keys and values, causally
    mask: torch.Tensor | None  # [Q, U]


@dataclass(slots=True)
class StepPlan:
    """Where a step's tokens go and what each attends to, built once and read by every layer."""

    pool: PagedKV
    write: torch.Tensor  # [T] the slot of each new token
    decode_rows: torch.Tensor | slice | None  # [B] positions in the step of the decode tokens that share no prefix
    decode_slots: torch.Tensor | None  # [B, L] the slots each of them attends to
    decode_mask: torch.Tensor | None  # [B, 1, 1, L]
    groups: list[Group]


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

    def plan(self, entries: Sequence[Entry]) -> StepPlan:
        """A step's plan. Each prefill chunk attends alone. Decode tokens whose sequences start with the same blocks
        (one prompt's choices, an agent's shared system prompt) attend as one group, so their common blocks are read
        once; the other decode tokens attend as one padded batch."""
        device, size = self.device, self.block_size
        stops = [entry.start + len(entry.tokens) for entry in entries]
        tables = [list(entry.blocks[: -(-stop // size)]) for entry, stop in zip(entries, stops, strict=True)]
        widest = max(len(table) for table in tables)
        # numpy builds the table from lists four times faster than torch.tensor
        padded = torch.from_numpy(np.array([table + [0] * (widest - len(table)) for table in tables], dtype=np.int64))
        slots = (padded[:, :, None] * size + torch.arange(size)).view(len(entries), widest * size)  # [E, positions]
        position = torch.arange(widest * size)
        ends = torch.tensor(stops)[:, None]
        begins = torch.tensor([entry.start for entry in entries])[:, None]
        if len(stops) == sum(len(entry.tokens) for entry in entries):  # one new token each: decode only
            write = slots.gather(1, begins).view(-1)
        else:
            write = slots[(position >= begins) & (position < ends)]
        starts = list(accumulate((len(entry.tokens) for entry in entries), initial=0))
        groups: list[Group] = []
        kinship: dict[int, list[int]] = {}
        for i, entry in enumerate(entries):
            if len(entry.tokens) == 1:
                kinship.setdefault(tables[i][0], []).append(i)
                continue
            rows = slice(starts[i], starts[i] + len(entry.tokens))
            if entry.start == 0:
                groups.append(Group(rows, None, None))
                continue
            mask = torch.ones((len(entry.tokens), stops[i]), dtype=torch.bool).tril(entry.start)
            groups.append(Group(rows, slots[i, : stops[i]].to(device), mask.to(device)))
        decode: list[int] = []
        for members in kinship.values():
            group = self._shared_group(members, tables, stops, starts) if len(members) > 1 else None
            if group is None:
                decode.extend(members)
            else:
                groups.append(group)
        plan = StepPlan(self, write.to(device), None, None, None, groups)
        decode.sort()  # in step order: kinship gathered them by first block
        if decode:
            width = max(stops[i] for i in decode)
            chosen = torch.tensor(decode)
            rows = [starts[i] for i in decode]
            contiguous = rows == list(range(len(rows)))  # decode tokens come first in a step: the usual case
            plan.decode_rows = slice(0, len(rows)) if contiguous else torch.tensor(rows, device=device)
            plan.decode_slots = slots[chosen, :width].to(device)
            plan.decode_mask = (position[None, :width] < ends[chosen]).to(device)[:, None, None, :]
        return plan

    def _shared_group(
        self, members: list[int], tables: list[list[int]], stops: list[int], starts: list[int]
    ) -> Group | None:
        """One group for decode tokens whose sequences share their first blocks, when reading the union of their
        blocks once (each token masked to its own sequence) costs at most twice what reading each one's own does."""
        size = self.block_size
        order: dict[int, int] = {}
        for i in members:
            for block in tables[i]:
                order.setdefault(block, len(order))
        if len(members) * len(order) * size > 2 * sum(stops[i] for i in members):
            return None
        mask = torch.zeros((len(members), len(order) * size), dtype=torch.bool)
        for row, i in enumerate(members):
            where = torch.tensor([order[block] for block in tables[i]])[:, None] * size + torch.arange(size)
            mask[row, where.view(-1)[: stops[i]]] = True
        unique = (torch.tensor(list(order))[:, None] * size + torch.arange(size)).view(-1)
        device = self.device
        rows = torch.tensor([starts[i] for i in members], device=device)
        return Group(rows, unique.to(device), mask.to(device))


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
        q = query[0][:, paged.decode_rows].transpose(0, 1)[:, :, None, :]  # [B, heads, 1, dim]
        k = _gather(keys, paged.decode_slots).transpose(1, 2)  # [B, kv_heads, L, dim]
        v = _gather(values, paged.decode_slots).transpose(1, 2)
        o = _decode_attention(q, k, v, paged.decode_mask, scaling)
        rows = paged.decode_rows
        if not paged.groups and isinstance(rows, slice) and rows.stop == len(out):  # decode tokens only, in order
            return o[:, :, 0, :][None], None
        out[paged.decode_rows] = o[:, :, 0, :]
    for group in paged.groups:
        q = query[:, :, group.rows, :]
        if group.slots is None:
            k, v = key[:, :, group.rows, :], value[:, :, group.rows, :]
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scaling, enable_gqa=True)
        else:
            k = _gather(keys, group.slots).transpose(0, 1)[None]
            v = _gather(values, group.slots).transpose(0, 1)[None]
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=group.mask, scale=scaling, enable_gqa=True)
        out[group.rows] = o[0].transpose(0, 1)
    return out[None], None


def _decode_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, scale: float | None
) -> torch.Tensor:
    """One query per row over its padded past (q ``[B, heads, 1, dim]``, k and v ``[B, kv_heads, L, dim]``, mask
    ``[B, 1, 1, L]``). On CPU as two matrix products with the scores and softmax in float32: torch's fused CPU
    kernel is slow for one query per row, 1.5x slower in float32 and 10x in bfloat16 at 8 rows over 1,052 keys
    (bench/README.md). Elsewhere, and for little float32 work (a tiny model's rows: its fewer calls win), the fused
    kernel."""
    if q.device.type != "cpu" or (q.dtype == torch.float32 and k.numel() < _FUSED_DECODE_KEYS):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=True)
    rows, heads, _, dim = q.shape
    kv_heads = k.shape[1]
    grouped = q.reshape(rows, kv_heads, heads // kv_heads, dim)  # a KV head's query heads are consecutive
    scores = torch.matmul(grouped.float(), k.transpose(2, 3).float())  # [B, kv_heads, group, L]
    scores.mul_(scale if scale is not None else dim**-0.5)
    if mask is not None:
        scores.masked_fill_(~mask, float("-inf"))  # every row keeps its own token: never all masked
    weights = torch.softmax(scores, dim=-1).to(v.dtype)
    return torch.matmul(weights, v).view(rows, heads, 1, dim)


def _gather(pool: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """The pool's rows at ``slots`` (any shape), ``[*slots.shape, heads, dim]``: ``index_select`` on the flat slots,
    several times faster on CPU than indexing with the slot tensor itself."""
    return pool.index_select(0, slots.reshape(-1)).view(*slots.shape, *pool.shape[1:])


AttentionInterface.register(ATTENTION, paged_attention)
