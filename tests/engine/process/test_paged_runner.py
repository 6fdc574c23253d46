"""The paged runner on the real tiny model (CPU): one ragged forward equals each sequence's own plain forward."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForCausalLM

from app.engine.options import BatchLimits
from app.engine.process.paged_attention import _FUSED_DECODE_KEYS, ATTENTION, Entry, _decode_attention
from app.engine.process.paged_runner import PagedRunner, kv_bytes_per_token, paged_runner, pool_blocks
from tests.support.models import NEVER_EOS_MODEL_ID, load_model_and_tokenizer, snapshot_path


@pytest.fixture(scope="module")
def model(hf_home: Path) -> Any:
    return load_model_and_tokenizer(hf_home, NEVER_EOS_MODEL_ID)[0]


def plain(model: Any, tokens: list[int]) -> torch.Tensor:
    """Every position's logits of one plain forward (the model's own attention)."""
    model.set_attn_implementation("sdpa")
    try:
        return model(input_ids=torch.tensor([tokens]), use_cache=False).logits[0]
    finally:
        model.set_attn_implementation(ATTENTION)


@torch.inference_mode()
def test_prefill_chunks_and_decodes_of_several_sequences_share_one_forward(model: Any) -> None:
    runner = PagedRunner(model, num_blocks=16)
    a, b = [5, 6, 7, 8], list(range(10, 50))  # b spans three blocks, out of order in the pool
    a_blocks, b_blocks = [3], [7, 1, 12]
    first = runner.forward([(a_blocks, 0, a[:3]), (b_blocks, 0, b[:20])])
    second = runner.forward([(a_blocks, 3, a[3:]), (b_blocks, 20, b[20:])])  # a decode beside a prefill chunk
    third = runner.forward([(b_blocks, 40, [9]), (a_blocks, 4, [9])])  # two decodes of different lengths
    a_ref, b_ref = plain(model, [*a, 9]), plain(model, [*b, 9])
    torch.testing.assert_close(first, torch.stack([a_ref[2], b_ref[19]]), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(second, torch.stack([a_ref[3], b_ref[39]]), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(third, torch.stack([b_ref[40], a_ref[4]]), atol=1e-4, rtol=1e-4)


@torch.inference_mode()
def test_decodes_of_sequences_sharing_a_prefix_read_it_once_and_each_see_only_their_own(model: Any) -> None:
    runner = PagedRunner(model, num_blocks=16)
    prefix = list(range(20, 84))  # four full blocks, as the prefix cache shares them
    tails = {"x": [60, 61, 62], "y": [70, 71, 72, 73, 74, 75], "z": [80]}
    own = {"x": [4], "y": [5], "z": [6]}
    lone = list(range(100, 120))  # shares nothing: decodes beside the group in the padded batch
    runner.forward([([0, 1, 2, 3], 0, prefix), ([9, 10], 0, lone)])
    runner.forward([([0, 1, 2, 3, *own[k]], 64, tail) for k, tail in tails.items()])
    decodes = [([0, 1, 2, 3, *own[k]], 64 + len(tail), [9]) for k, tail in tails.items()]
    newcomer = ([0, 1, 2, 3, 7], 64, [90, 91, 92, 93])  # a prefill chunk over the same prefix in the same step
    plan = runner.kv.plan([Entry(*entry) for entry in [*decodes, ([9, 10], 20, [9]), newcomer]])
    assert len(plan.groups) == 2 and plan.decode_rows is not None and plan.decode_rows.tolist() == [3]
    step = runner.forward([*decodes, ([9, 10], 20, [9]), newcomer])
    expected = [plain(model, [*prefix, *tail, 9])[-1] for tail in tails.values()]
    expected += [plain(model, [*lone, 9])[-1], plain(model, [*prefix, 90, 91, 92, 93])[-1]]
    torch.testing.assert_close(step, torch.stack(expected), atol=1e-4, rtol=1e-4)


@torch.inference_mode()
def test_decodes_sharing_a_first_block_but_too_little_to_group_keep_their_places_in_the_step(model: Any) -> None:
    runner = PagedRunner(model, num_blocks=16)
    shared = list(range(20, 36))  # one full block; each of x, z and w then has 40 tokens of its own
    x, z, w = ([*shared, *range(start, start + 40)] for start in (40, 100, 160))
    y = list(range(300, 330))
    tables = {"x": [0, 1, 2, 3], "y": [13, 14], "z": [0, 5, 6, 7], "w": [0, 9, 10, 11]}
    runner.forward([(tables["x"], 0, x), (tables["y"], 0, y)])
    runner.forward([(tables["z"], 16, z[16:]), (tables["w"], 16, w[16:])])
    step = [(tables["x"], 56, [9]), (tables["y"], 30, [9]), (tables["z"], 56, [9]), (tables["w"], 56, [9])]
    plan = runner.kv.plan([Entry(*entry) for entry in step])
    assert plan.groups == []  # x, z and w share one block of four: each reads its own
    logits = runner.forward(step)  # y's place is between x and z, whose first block is the same
    expected = [plain(model, [*tokens, 9])[-1] for tokens in (x, y, z, w)]
    torch.testing.assert_close(logits, torch.stack(expected), atol=1e-4, rtol=1e-4)


@torch.inference_mode()
def test_a_copied_block_continues_like_the_original(model: Any) -> None:
    runner = PagedRunner(model, num_blocks=4)
    runner.forward([([0], 0, [5, 6, 7])])
    runner.copy_block(0, 2)
    original = runner.forward([([0], 3, [8])])
    copy = runner.forward([([2], 3, [8])])
    torch.testing.assert_close(original, copy)


def test_the_pool_is_sized_by_max_kv_tokens_or_memory(model: Any) -> None:
    assert pool_blocks(model, BatchLimits(max_kv_tokens=100), context=512) == 7  # rounded up to whole blocks
    config = model.config
    per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim * 4  # float32
    assert kv_bytes_per_token(model) == per_token
    # CPU: every row at the whole context (within a share of the host's available memory)
    assert pool_blocks(model, BatchLimits(max_batch_size=4), context=512) == 4 * 512 // 16


@torch.inference_mode()
def test_the_model_is_checked_against_its_plain_forward_at_load(model: Any) -> None:
    runner = paged_runner(model, BatchLimits(max_kv_tokens=256), media=False, context=512)
    assert runner is not None and runner.kv.num_blocks == 16
    runner.restore_attention()
    assert (
        paged_runner(model, BatchLimits(max_kv_tokens=256), media=True, context=512) is None
    )  # media forwards keep their path


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@torch.inference_mode()
def test_the_load_check_takes_the_weights_dtype_and_refuses_a_forward_that_loses_the_past(
    hf_home: Path, dtype: torch.dtype
) -> None:
    model = AutoModelForCausalLM.from_pretrained(snapshot_path(hf_home, NEVER_EOS_MODEL_ID), dtype=dtype)
    runner = PagedRunner(model.eval(), num_blocks=4)
    assert runner.agrees_with_plain_forward()  # bfloat16 logits differ from the plain forward's by roundings
    pool = runner.kv.layer

    def forgetful(index: int, heads: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        keys, values = pool(index, heads, dim)
        return keys.zero_(), values.zero_()  # what was cached before this step is gone

    runner.kv.layer = forgetful  # type: ignore[method-assign]
    assert not runner.agrees_with_plain_forward()


@torch.inference_mode()
def test_a_bfloat16_decode_batch_matches_the_plain_forward(hf_home: Path) -> None:
    source = snapshot_path(hf_home, NEVER_EOS_MODEL_ID)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.bfloat16).eval()
    runner = PagedRunner(model, num_blocks=16)
    a, b = list(range(5, 30)), list(range(40, 47))  # no shared first block: the padded decode batch
    runner.forward([([0, 1], 0, a), ([2], 0, b)])
    step = runner.forward([([0, 1], len(a), [9]), ([2], len(b), [9])])
    model.set_attn_implementation("sdpa")
    try:
        expected = [model(input_ids=torch.tensor([[*seq, 9]]), use_cache=False).logits[0, -1] for seq in (a, b)]
    finally:
        model.set_attn_implementation(ATTENTION)
    tolerance = 4 * torch.finfo(torch.bfloat16).eps
    for got, want in zip(step, expected, strict=True):
        torch.testing.assert_close(
            got.float(), want.float(), rtol=tolerance, atol=tolerance * float(want.abs().median())
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_cpu_decode_attention_equals_the_fused_kernel(dtype: torch.dtype) -> None:
    """Shapes of a real model's decode batch (8 query heads over 2 KV heads, head dim 64), rows of several lengths."""
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(4, 8, 1, 64, generator=gen).to(dtype)
    k, v = (torch.randn(4, 2, 640, 64, generator=gen).to(dtype) for _ in range(2))
    mask = (torch.arange(640)[None] < torch.tensor([640, 17, 300, 1])[:, None])[:, None, None, :]
    assert k.numel() >= _FUSED_DECODE_KEYS  # the matrix products, not the fused kernel
    got = _decode_attention(q, k, v, mask, None)
    want = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask, enable_gqa=True)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(got.float(), want, atol=tolerance, rtol=tolerance)


def test_sliding_window_models_are_not_paged() -> None:
    shape = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    config = AutoConfig.for_model(
        "gemma2", **shape, num_key_value_heads=2, head_dim=8, vocab_size=64, sliding_window=16, query_pre_attn_scalar=8
    )
    model = AutoModelForCausalLM.from_config(config).eval()
    assert paged_runner(model, BatchLimits(max_kv_tokens=256), media=False, context=512) is None
