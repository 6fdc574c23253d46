"""Seeding, initialisation and the small training loop behind the tiny chat model."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from app.testing.canned_chats import CANNED_CHATS

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

Batch = dict[str, "torch.Tensor"]
Pair = tuple[list[int], list[int]]  # (prompt ids, completion ids + eos)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[torch.Generator]:
    """Seeded, single-threaded torch inside the block; the caller's RNG state and thread
    count are restored after. One thread is both faster for these tiny matrices (2-thread
    OpenMP on a busy 2-core box is 5x slower) and independent of the machine's core count."""
    import torch

    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        try:
            yield torch.Generator().manual_seed(seed)
        finally:
            torch.set_num_threads(threads)


def init_weights(model: torch.nn.Module, gen: torch.Generator, std: float = 0.02) -> None:
    """Explicit init from a local generator (independent of transformers' init code)."""
    import torch

    with torch.no_grad():
        for _, param in sorted(model.named_parameters()):
            if param.ndim == 1:  # norm weights (these models have no biases)
                param.fill_(1.0)
            else:
                param.normal_(0.0, std, generator=gen)


def encode_canned_chats(tok: PreTrainedTokenizerFast) -> list[Pair]:
    """``(prompt_ids, completion_ids + [eos])`` for each canned chat, tokenized like a server would."""
    pairs = []
    for chat in CANNED_CHATS:
        prompt = tok.apply_chat_template(
            chat["messages"],
            tools=chat["tools"],
            add_generation_prompt=True,
            tokenize=False,
            **chat["chat_template_kwargs"],
        )
        prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        completion_ids = tok(chat["completion"], add_special_tokens=False)["input_ids"]
        pairs.append((prompt_ids, [*completion_ids, tok.eos_token_id]))
    return pairs


def make_batches(pairs: list[Pair], pad_id: int) -> list[Batch]:
    """Right-padded batches of similar lengths (short chats are not padded to the tool chats)."""
    import torch

    buckets: list[list[Pair]] = []
    for pair in sorted(pairs, key=lambda pc: len(pc[0]) + len(pc[1])):
        if buckets and len(pair[0]) + len(pair[1]) <= 1.5 * (len(buckets[-1][0][0]) + len(buckets[-1][0][1])):
            buckets[-1].append(pair)
        else:
            buckets.append([pair])
    batches = []
    for bucket in buckets:
        width = max(len(p) + len(c) for p, c in bucket)
        ids = torch.full((len(bucket), width), pad_id)
        mask = torch.zeros((len(bucket), width), dtype=torch.long)
        labels = torch.full((len(bucket), width), -100)
        for row, (prompt, completion) in enumerate(bucket):
            n, m = len(prompt), len(completion)
            ids[row, : n + m] = torch.tensor(prompt + completion)
            mask[row, : n + m] = 1
            labels[row, n : n + m] = torch.tensor(completion)
        batches.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return batches


def min_teacher_forced_margin(model: PreTrainedModel, batches: list[Batch]) -> float:
    """Smallest (target logit - best other logit) over all labelled positions.

    Positive everywhere means greedy decoding reproduces every completion exactly.
    """
    import torch

    margins = []
    with torch.no_grad():
        for batch in batches:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
            labels = batch["labels"][:, 1:]
            keep = labels != -100
            picked, targets = logits[keep], labels[keep]
            target = picked.gather(1, targets[:, None]).squeeze(1)
            other = picked.scatter(1, targets[:, None], float("-inf")).max(dim=1).values
            margins.append(float((target - other).min()))
    return min(margins)


def train(model: PreTrainedModel, batches: list[Batch], steps: int, lr: float) -> float:
    """AdamW on the summed token loss of all batches; returns the last mean token loss."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.0)
    warmup = max(1, steps // 10)

    def schedule(step: int) -> float:  # linear warm-up, cosine decay to 10 %
        if step < warmup:
            return (step + 1) / warmup
        return 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    counts = [int((b["labels"][:, 1:] != -100).sum()) for b in batches]
    total = float("nan")
    model.train()
    for _ in range(steps):
        total = 0.0
        for batch, count in zip(batches, counts, strict=True):
            loss = model(**batch).loss * (count / sum(counts))
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
    return total
