"""The forward passes of a model whose KV cache is paged (``PagedRunner``): one ragged forward per step over the
new tokens of every sequence, reading and writing the block pool through block tables the engine hands in.

Like ``ModelRunner`` it keeps its tensors itself and its calls take and return plain values (block tables,
token ids; logits back), so tensor parallelism replays them on the other ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import structlog
import torch
import torch.distributed as dist
from transformers import DynamicCache

from app.engine.options import BatchLimits
from app.engine.process.cpu_threads import cpu_threads
from app.engine.process.model_runner import cache_argument, mergeable
from app.engine.process.paged_attention import ATTENTION, Entry, PagedKV
from app.engine.process.prompt_scoring import PositionScore, score_prompt

log = structlog.get_logger(__name__)

BLOCK_SIZE = 16
_PROBE = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]  # token ids of the load-time check (any in-vocabulary ids)
_CPU_KV_FRACTION = 0.2  # without --max-kv-tokens, the share of the host's free memory the CPU pool may take


def kv_bytes_per_token(model: Any, ranks: int = 1) -> int:
    """Bytes one cached token needs on one rank: keys and values of every layer."""
    config = model.config.get_text_config()
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * max(1, heads // ranks) * dim * model.dtype.itemsize


def pool_blocks(model: Any, limits: BatchLimits, context: int, ranks: int = 1) -> int:
    """Blocks the pool gets: ``--max-kv-tokens``; else on CUDA ``--gpu-memory-utilization`` of the card's memory less
    what is in use (the weights); else (CPU) enough for every row at the model's whole context, within a fifth of
    the host's available memory."""
    if limits.max_kv_tokens is not None:
        return -(-limits.max_kv_tokens // BLOCK_SIZE)
    per_block = kv_bytes_per_token(model, ranks) * BLOCK_SIZE
    device = torch.device(model.device)
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return max(16, int((free - (1 - limits.gpu_memory_utilization) * total) // per_block))
    wanted = -(-limits.max_batch_size * context // BLOCK_SIZE)
    return max(16, min(wanted, int(_CPU_KV_FRACTION * _available_host_memory() // per_block)))


def _available_host_memory() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def pageable(model: Any, *, media: bool) -> bool:
    """Whether this model's cache can be paged: full-attention layers only (no sliding window, no linear attention,
    no encoder-decoder cache), text only (media forwards need their own inputs), and a forward that goes through
    transformers' attention interface (checked at load, ``PagedRunner.agrees_with_plain_forward``)."""
    config = model.config
    if media or getattr(config, "is_encoder_decoder", False):
        return False
    return mergeable(DynamicCache(config=config))


class PagedRunner:
    """Runs the model over the paged pool; decides nothing (the engine schedules, allocates blocks and samples)."""

    batchable = True

    def __init__(self, model: Any, num_blocks: int, block_size: int = BLOCK_SIZE) -> None:
        self.model = model
        self.vocab_size = int(model.get_output_embeddings().weight.shape[0])
        self.kv = PagedKV(num_blocks, block_size, torch.device(model.device), model.dtype)
        current = model.config._attn_implementation
        self._plain_attention = "sdpa" if current in (None, ATTENTION) else current
        model.set_attn_implementation(ATTENTION)

    @property
    def device(self) -> torch.device:
        return torch.device(self.model.device)

    def forward(self, entries: Sequence[tuple[Sequence[int], int, Sequence[int]]]) -> torch.Tensor:
        """One ragged forward: for each (block table, cached tokens, new tokens), write the new tokens' keys and
        values into their blocks; returns the logits after each entry's last new token, ``[entries, vocab]``."""
        step = [Entry(blocks, start, tokens) for blocks, start, tokens in entries]
        device = self.device
        ids = [token for entry in step for token in entry.tokens]
        positions = [p for entry in step for p in range(entry.start, entry.start + len(entry.tokens))]
        lasts = torch.tensor(_last_positions(step), device=device)
        cpu_threads.step(prefill_tokens=sum(len(entry.tokens) for entry in step if len(entry.tokens) > 1))
        out = self.model(
            input_ids=torch.tensor([ids], device=device),
            position_ids=torch.tensor([positions], device=device),
            use_cache=False,
            logits_to_keep=lasts,
            paged=self.kv.plan(step),
        )
        return out.logits[0]

    def copy_block(self, source: int, target: int) -> None:
        """Copy-on-write: a choice gets its own copy of the prompt's partial last block."""
        self.kv.copy_block(source, target)

    def score_prompt(self, prompt: Sequence[int], top_k: int) -> list[PositionScore]:
        """A prompt's logprobs (``prompt_scoring``): a plain forward in its own cache, with the model's own
        attention for its length (the engine runs nothing else meanwhile), never through the pool."""
        self.model.set_attn_implementation(self._plain_attention)
        try:
            return score_prompt(self.model, prompt, top_k, self.vocab_size, argument=cache_argument(self.model))
        finally:
            self.model.set_attn_implementation(ATTENTION)

    @torch.no_grad()
    def agrees_with_plain_forward(self) -> bool:
        """Prefill a short probe in two chunks and a decode token through the pool, against one plain forward of the
        same tokens; a model whose attention does not go through the interface (or reads something else) differs."""
        probe = [t % self.vocab_size for t in _PROBE]
        blocks = list(range(-(-len(probe) // self.kv.block_size)))
        if len(blocks) > self.kv.num_blocks:
            return False
        try:
            forward = PagedRunner.forward  # every rank checks itself: never replayed
            first = forward(self, [(blocks, 0, probe[:6])])
            second = forward(self, [(blocks, 6, probe[6:9])])
            last = forward(self, [(blocks, 9, probe[9:])])
            self.model.set_attn_implementation(self._plain_attention)
            plain = self.model(input_ids=torch.tensor([probe], device=self.device), use_cache=False).logits[0]
        except Exception:
            return False
        finally:
            self.model.set_attn_implementation(ATTENTION)
        paged = torch.stack([first[0], second[0], last[0]]).float()
        expected = plain[[5, 8, 9]].float()
        # within a few roundings of the dtype (bfloat16 keeps 8 bits), absolute ones scaled by the logits' own size:
        # a forward that loses the cached past is off by far more (measured on the test and bench models)
        tolerance = max(1e-3, 4 * torch.finfo(self.model.dtype).eps)
        return bool(torch.allclose(paged, expected, rtol=tolerance, atol=tolerance * float(expected.abs().median())))

    def restore_attention(self) -> None:
        """Give the model back its own attention (it is served by ``ModelRunner`` after all)."""
        self.model.set_attn_implementation(self._plain_attention)
        self.kv = PagedKV(0, self.kv.block_size, self.kv.device, self.kv.dtype)


def paged_runner(
    model: Any,
    limits: BatchLimits,
    *,
    media: bool,
    context: int,
    ranks: int = 1,
    make: Callable[[Any, int], PagedRunner] | None = None,
) -> PagedRunner | None:
    """The paged runner for ``model``, or None when its cache cannot be paged (it keeps ``ModelRunner``). Every rank
    of a tensor-parallel model makes the same choice with the same pool size."""
    if not pageable(model, media=media):
        return None
    blocks = pool_blocks(model, limits, context, ranks)
    if dist.is_initialized():
        agreed = torch.tensor([blocks], device=model.device)
        dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
        blocks = int(agreed.item())
    runner = (make or PagedRunner)(model, blocks)
    if runner.agrees_with_plain_forward():
        return runner
    log.warning("paged_cache_unsupported", model_type=getattr(model.config, "model_type", None))
    runner.restore_attention()
    return None


def _last_positions(step: Sequence[Entry]) -> list[int]:
    lasts, offset = [], 0
    for entry in step:
        offset += len(entry.tokens)
        lasts.append(offset - 1)
    return lasts
