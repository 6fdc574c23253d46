"""The KV cache's bookkeeping: which fixed-size blocks of the pool are free, who holds each block, and the
automatic prefix cache (full blocks by content hash, chained with their prefix).

It owns no tensors: the model runner writes and reads the pool through the block tables this hands out.
A block is free (never filled, or evicted), held (reference count > 0), or cached (full, hashed, unreferenced:
kept for reuse and evicted least recently used first when a free block is needed).
"""

from __future__ import annotations

import hashlib
from array import array
from collections import OrderedDict
from collections.abc import Sequence


def chain_hash(parent: bytes, tokens: Sequence[int]) -> bytes:
    """The content hash of one full block: its tokens chained with the hash of everything before it."""
    return hashlib.blake2b(parent + array("q", tokens).tobytes(), digest_size=16).digest()


def root_hash(model: str, media: Sequence[str] = ()) -> bytes:
    """The hash every chain starts from: the model (and revision), and the prompt's media, if any."""
    return hashlib.blake2b("\x00".join([model, *media]).encode(), digest_size=16).digest()


def prompt_chain(root: bytes, prompt: Sequence[int], block_size: int) -> list[bytes]:
    """The content hashes of the full blocks of ``prompt`` the prefix cache may serve: all but one holding its last
    token, whose forward gives the logits of the first output token."""
    chain, parent = [], root
    for start in range(0, (len(prompt) - 1) // block_size * block_size, block_size):
        parent = chain_hash(parent, prompt[start : start + block_size])
        chain.append(parent)
    return chain


class OutOfBlocks(Exception):
    """No free block, and no cached block to evict."""


class BlockPool:
    def __init__(self, num_blocks: int, block_size: int, *, prefix_caching: bool = True) -> None:
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.prefix_caching = prefix_caching
        self._free: list[int] = list(range(num_blocks - 1, -1, -1))  # pop() hands out block 0 first
        self._refs = [0] * num_blocks
        self._hash_of: dict[int, bytes] = {}  # block -> its content hash (full blocks only)
        self._by_hash: dict[bytes, int] = {}
        self._cached: OrderedDict[int, None] = OrderedDict()  # unreferenced, hashed: least recently used first
        self.queries = 0  # prompt tokens looked up in the prefix cache
        self.hits = 0  # of them, tokens found cached

    @property
    def available(self) -> int:
        """Blocks a sequence can get now: free ones plus cached ones that can be evicted."""
        return len(self._free) + len(self._cached)

    @property
    def used(self) -> int:
        """Blocks held by running or prefilling sequences."""
        return self.num_blocks - self.available

    def blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.block_size)

    def allocate(self) -> int:
        if self._free:
            block = self._free.pop()
        elif self._cached:
            block, _ = self._cached.popitem(last=False)
            del self._by_hash[self._hash_of.pop(block)]
        else:
            raise OutOfBlocks
        self._refs[block] = 1
        return block

    def share(self, block: int) -> None:
        """One more holder of ``block`` (another choice of the same prompt)."""
        self._refs[block] += 1

    def release(self, blocks: Sequence[int]) -> None:
        """The holder of ``blocks`` is done with them: unreferenced full blocks stay cached, the rest are free."""
        for block in blocks:
            self._refs[block] -= 1
            if self._refs[block] == 0:
                if block in self._hash_of:
                    self._cached[block] = None
                else:
                    self._free.append(block)

    def _cached_run(self, chain: Sequence[bytes]) -> list[int]:
        """The cached blocks that begin a prompt whose full blocks' hashes are ``chain`` (``prompt_chain``)."""
        run: list[int] = []
        if not self.prefix_caching:
            return run
        for content in chain:
            block = self._by_hash.get(content)
            if block is None:
                break
            run.append(block)
        return run

    def cached_prefix(self, chain: Sequence[bytes]) -> int:
        """How many blocks of a prompt's beginning the cache holds (nothing is taken)."""
        return len(self._cached_run(chain))

    def lookup(self, chain: Sequence[bytes], tokens: int) -> list[int]:
        """The longest cached run of a prompt's full blocks, now held by the caller (``tokens``: the prompt's
        length, for the hit-rate counters)."""
        run = self._cached_run(chain)
        for block in run:
            if self._refs[block] == 0:
                del self._cached[block]
            self._refs[block] += 1
        self.queries += tokens
        self.hits += len(run) * self.block_size
        return run

    def register(self, block: int, content_hash: bytes) -> None:
        """``block`` is full and holds the content ``content_hash`` names: later prompts may reuse it."""
        if not self.prefix_caching or block in self._hash_of or content_hash in self._by_hash:
            return
        self._hash_of[block] = content_hash
        self._by_hash[content_hash] = block
