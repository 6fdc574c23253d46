"""Tiny model shapes, seeding, initialisation and the small training loop behind the tiny chat models."""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.demo.canned_chats import CANNED_CHATS

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

Batch = dict[str, "torch.Tensor"]
Pair = tuple[list[int], list[int]]  # (prompt ids, completion ids + eos)

log = logging.getLogger(__name__)

RECIPE_FILE = "hfserve_tiny_model.json"  # what a model was built from; the installer adds the recipe hash
MIN_MARGIN = 2.0  # teacher-forced logit margin every trained token must reach


# Every tiny decoder: 2 layers of width 64, 4 query and 2 key/value heads of 16 (~0.1 M parameters
# with a 2048-token vocabulary).
TINY_DIMS: dict[str, int] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "intermediate_size": 128,
    "max_position_embeddings": 2048,
}


def padded(n: int, multiple: int = 64) -> int:
    """Embedding rows rounded up, like real checkpoints (config.vocab_size > len(tokenizer))."""
    return -(-n // multiple) * multiple


def causal_lm(
    config_class: Any,
    model_class: Any,
    vocab_size: int,
    *,
    eos: int | list[int],
    pad: int | None,
    bos: int | None = None,
    tie: bool = True,
    **config: Any,
) -> PreTrainedModel:
    """A :data:`TINY_DIMS` causal LM of the given family with plain greedy generation defaults
    (no sampling presets, so tests control every sampling parameter)."""
    from transformers import GenerationConfig

    model = model_class(
        config_class(
            **{**TINY_DIMS, **config},
            vocab_size=vocab_size,
            tie_word_embeddings=tie,
            eos_token_id=eos,
            pad_token_id=pad,
            bos_token_id=bos,
        )
    )
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=pad, bos_token_id=bos)
    return model


def qwen3_model(vocab_size: int, *, tie: bool, eos_id: int, pad_id: int) -> PreTrainedModel:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    return causal_lm(Qwen3Config, Qwen3ForCausalLM, vocab_size, eos=eos_id, pad=pad_id, tie=tie)


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


def encode_canned_chats(tok: PreTrainedTokenizerFast, chats: Sequence[dict[str, Any]] = CANNED_CHATS) -> list[Pair]:
    """``(prompt_ids, completion_ids + [stop])`` for each canned chat, tokenized like a server would.

    The stop token is the chat's ``stop`` (a token string, for families that end some turns with
    another end-of-generation token than the tokenizer's eos), else ``tok.eos_token``."""
    pairs = []
    for chat in chats:
        prompt = tok.apply_chat_template(
            chat["messages"],
            tools=chat["tools"],
            add_generation_prompt=True,
            tokenize=False,
            **chat["chat_template_kwargs"],
        )
        prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        completion_ids = tok(chat["completion"], add_special_tokens=False)["input_ids"]
        stop = tok.convert_tokens_to_ids(chat.get("stop") or tok.eos_token)
        pairs.append((prompt_ids, [*completion_ids, stop]))
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


def fit_canned_chats(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerFast,
    chats: Sequence[dict[str, Any]],
    *,
    steps: int,
    lr: float,
    label: str,
) -> dict[str, Any]:
    """Train ``model`` (inside :func:`seeded`) until greedy decoding reproduces every canned chat.

    Trains ``steps`` AdamW steps, then keeps training in short rounds (up to ``3 * steps`` extra)
    until every canned token wins greedy decoding by a logit margin of at least :data:`MIN_MARGIN`,
    so results hold on other CPUs/thread counts too. Returns what was done, for the model's recipe file.
    """
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    batches = make_batches(encode_canned_chats(tok, chats), pad)
    model.set_attn_implementation("eager")  # CPU SDPA backward with a padding mask is ~20x slower
    loss = train(model, batches, steps, lr)
    margin, total = min_teacher_forced_margin(model, batches), steps
    while margin < MIN_MARGIN and total < 4 * steps:
        loss = train(model, batches, max(1, steps // 4), lr / 3)
        margin, total = min_teacher_forced_margin(model, batches), total + max(1, steps // 4)
    model.set_attn_implementation("sdpa")
    if margin <= 0:
        raise RuntimeError(f"{label} did not learn its canned chats (margin {margin:.3f})")
    if margin < MIN_MARGIN:
        log.warning("%s: greedy margin only %.2f; answers may differ on other CPUs", label, margin)
    log.info("%s: %d steps, loss %.4f, min margin %.2f", label, total, loss, margin)
    return {"steps": total, "lr": lr}


def save_model(model: PreTrainedModel, out_dir: Path, meta: dict[str, Any]) -> Path:
    """Save the weights (and generation config) with ``meta`` in :data:`RECIPE_FILE`."""
    model.save_pretrained(str(out_dir))
    (Path(out_dir) / RECIPE_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return Path(out_dir)
