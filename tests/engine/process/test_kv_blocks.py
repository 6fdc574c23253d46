from __future__ import annotations

import pytest

from app.engine.process.kv_blocks import BlockPool, OutOfBlocks, chain_hash, prompt_chain, root_hash

ROOT = root_hash("org/model@abc123")


def fill(pool: BlockPool, prompt: list[int]) -> list[int]:
    """Allocate and register the full blocks of ``prompt`` as a finished prefill would."""
    blocks, parent = [], ROOT
    for start in range(0, len(prompt) // pool.block_size * pool.block_size, pool.block_size):
        block = pool.allocate()
        parent = chain_hash(parent, prompt[start : start + pool.block_size])
        pool.register(block, parent)
        blocks.append(block)
    return blocks


def lookup(pool: BlockPool, prompt: list[int], root: bytes = ROOT) -> list[int]:
    return pool.lookup(prompt_chain(root, prompt, pool.block_size), len(prompt))


def test_hashes_chain_the_prefix_the_model_and_the_media() -> None:
    assert chain_hash(ROOT, [1, 2]) != chain_hash(chain_hash(ROOT, [9, 9]), [1, 2])
    assert root_hash("org/model@abc123") != root_hash("org/model@def456")
    assert root_hash("m", ["image-hash-1"]) != root_hash("m", ["image-hash-2"]) != root_hash("m")


def test_a_finished_prompts_full_blocks_are_found_by_the_next_one() -> None:
    pool = BlockPool(8, 4)
    prompt = list(range(10))  # two full blocks and a partial one
    blocks = fill(pool, prompt)
    pool.release(blocks)  # the first request finished: its blocks stay cached
    assert pool.available == 8 and pool.used == 0
    assert lookup(pool, [*prompt, 99]) == blocks
    assert pool.used == 2 and (pool.queries, pool.hits) == (11, 8)


def test_the_last_prompt_token_is_never_taken_from_the_cache() -> None:
    pool = BlockPool(8, 4)
    prompt = list(range(8))
    fill(pool, prompt)
    assert prompt_chain(ROOT, prompt, 4) == prompt_chain(ROOT, prompt[:7], 4)  # one block: not the last token's
    assert len(lookup(pool, prompt)) == 1  # the whole prompt is cached, but its last token must be computed


def test_a_different_prefix_or_model_finds_nothing() -> None:
    pool = BlockPool(8, 4)
    fill(pool, list(range(8)))
    assert lookup(pool, [0, 1, 2, 9, 4, 5, 6, 7, 8]) == []
    assert lookup(pool, list(range(9)), root_hash("other")) == []


def test_unreferenced_cached_blocks_are_evicted_least_recently_used_first() -> None:
    pool = BlockPool(2, 4)
    old, new = fill(pool, [1, 1, 1, 1]), fill(pool, [2, 2, 2, 2])
    pool.release(old)
    pool.release(new)
    assert pool.allocate() == old[0]  # evicted: its content is gone from the cache
    assert lookup(pool, [1, 1, 1, 1, 5]) == []
    assert lookup(pool, [2, 2, 2, 2, 5]) == new
    with pytest.raises(OutOfBlocks):
        pool.allocate()


def test_shared_blocks_are_freed_when_their_last_holder_leaves() -> None:
    pool = BlockPool(2, 4)
    block = pool.allocate()
    pool.share(block)
    pool.release([block])
    assert pool.available == 1
    pool.release([block])
    assert pool.available == 2


def test_without_prefix_caching_nothing_is_kept() -> None:
    pool = BlockPool(4, 4, prefix_caching=False)
    blocks = fill(pool, list(range(8)))
    pool.release(blocks)
    assert lookup(pool, list(range(9))) == []
    assert pool.cached_prefix(prompt_chain(ROOT, list(range(9)), 4)) == 0
