"""Decode attention over a paged pool, two ways, for one layer: each row against its own gathered keys in one
batched call (what ``app/engine/process/paged_attention.py`` does), and one query per row against every key of
the batch under a block-diagonal mask (what a single masked call over the whole ragged batch does).

    .venv/bin/python bench/attention.py --rows 32 --context 1000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F


def timed(fn: Callable[[], torch.Tensor], repeats: int) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=32)
    p.add_argument("--context", type=int, default=1000)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows, context, slots = args.rows, args.context, args.rows * args.context
    keys = torch.randn(slots, args.kv_heads, args.head_dim)
    values = torch.randn_like(keys)
    query = torch.randn(1, args.heads, rows, args.head_dim)
    own_slots = torch.arange(slots).view(rows, context)
    diagonal = torch.zeros(rows, slots, dtype=torch.bool)
    for row in range(rows):
        diagonal[row, row * context : (row + 1) * context] = True

    def per_row() -> torch.Tensor:
        k, v = keys[own_slots].transpose(1, 2), values[own_slots].transpose(1, 2)
        q = query[0].transpose(0, 1)[:, :, None, :]
        return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)

    def block_diagonal() -> torch.Tensor:
        k, v = keys.transpose(0, 1)[None], values.transpose(0, 1)[None]
        return F.scaled_dot_product_attention(query, k, v, attn_mask=diagonal[None, None], enable_gqa=True)

    for name, fn in (("per row, batched", per_row), ("block-diagonal mask", block_diagonal)):
        print(f"{name}: {timed(fn, args.repeats):.2f} ms per layer")


if __name__ == "__main__":
    main()
