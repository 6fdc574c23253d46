"""Who runs next in a paged model's step: the waiting line (new requests, and preempted rows to recompute), the
sequences being prefilled, and their blocks of the pool.

A newcomer starts prefilling when the batch has rows for its choices and the pool has blocks for its whole
prompt beyond what the sequences already prefilling will still take (its prompt's cached blocks come from the
prefix cache for free). Each step it gets a chunk of the step's token budget, so a long prompt is prefilled over
several steps beside the running decodes. It owns no tensors and runs no model.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection

from app.engine.options import BatchLimits
from app.engine.process.kv_blocks import BlockPool, chain_hash, prompt_chain
from app.engine.process.rows import EngineRequest, KVSeq, Row

Work = EngineRequest | Row  # a request's prompt, or a preempted row to recompute


def seq_of(item: Work) -> KVSeq:
    assert item.seq is not None
    return item.seq


def owner_id(item: Work) -> str:
    return item.id if isinstance(item, EngineRequest) else item.owner.id


def choices(item: Work) -> int:
    return item.open if isinstance(item, EngineRequest) else 1


class PagedScheduler:
    def __init__(self, limits: BatchLimits, max_rows: int, pool: BlockPool, root: bytes) -> None:
        self._limits = limits
        self.max_rows = max_rows
        self.pool = pool
        self._root = root
        self.waiting: deque[Work] = deque()
        self.prefilling: list[Work] = []
        self.preemptions = 0

    @property
    def pending(self) -> bool:
        return bool(self.waiting) or bool(self.prefilling)

    def add(self, request: EngineRequest) -> None:
        request.seq = KVSeq(list(request.prompt))
        request.seq.chain = prompt_chain(self._root, request.seq.tokens, self.pool.block_size)
        self.waiting.append(request)

    def withdraw(self, request_ids: Collection[str]) -> list[Work]:
        """Take these requests' prompts and rows out of the waiting line and out of prefill (they were aborted)."""
        gone = [item for item in (*self.waiting, *self.prefilling) if owner_id(item) in request_ids]
        for item in gone:
            if item in self.prefilling:
                self.prefilling.remove(item)
                self.free(seq_of(item))
            else:
                self.waiting.remove(item)
        return gone

    def drain(self) -> list[Work]:
        """Everything not yet running (the loop is ending)."""
        for item in self.prefilling:
            self.free(seq_of(item))
        pending = [*self.prefilling, *self.waiting]
        self.prefilling.clear()
        self.waiting.clear()
        return pending

    # -- blocks ---------------------------------------------------------------------------------
    def free(self, seq: KVSeq) -> None:
        """Give back a sequence's blocks; it must be computed again from its first token to run."""
        self.pool.release(seq.blocks)
        seq.blocks, seq.computed, seq.hashes = [], 0, []

    def grow(self, seq: KVSeq, tokens: int) -> bool:
        """Blocks for ``tokens`` more tokens of ``seq``; False (nothing taken) when the pool has too few."""
        need = self.pool.blocks_for(seq.computed + tokens) - len(seq.blocks)
        if need > self.pool.available:
            return False
        seq.blocks.extend(self.pool.allocate() for _ in range(need))
        return True

    def computed(self, seq: KVSeq, tokens: int) -> None:
        """``tokens`` more of ``seq`` are in the cache: its newly full blocks are hashed for later prompts."""
        seq.computed += tokens
        size = self.pool.block_size
        while (len(seq.hashes) + 1) * size <= seq.computed:
            index, start = len(seq.hashes), len(seq.hashes) * size
            parent = seq.hashes[-1] if seq.hashes else self._root
            known = index < len(seq.chain)
            seq.hashes.append(seq.chain[index] if known else chain_hash(parent, seq.tokens[start : start + size]))
            self.pool.register(seq.blocks[len(seq.hashes) - 1], seq.hashes[-1])

    def _still_needed(self, item: Work) -> int:
        """Blocks ``item`` will still take until its prompt is whole and each choice has its own last block."""
        seq = seq_of(item)
        return max(0, self.pool.blocks_for(len(seq.tokens)) - len(seq.blocks)) + choices(item) - 1

    # -- a step's prefill -----------------------------------------------------------------------
    def plan(self, budget: int, running: int) -> list[tuple[Work, int]]:
        """The prefill chunks of this step, ``(work, tokens)``, within ``budget`` tokens: the sequences already
        prefilling first, then newcomers in arrival order while rows and blocks allow."""
        planned: list[tuple[Work, int]] = []
        rows = running + sum(choices(item) for item in self.prefilling)
        for item in self.prefilling:
            tokens = min(seq_of(item).remaining, budget)
            if tokens <= 0 or not self.grow(seq_of(item), tokens):
                break
            planned.append((item, tokens))
            budget -= tokens
        deferred: list[Work] = []
        while self.waiting and budget > 0:
            item = self.waiting[0]
            if self._prefix_in_flight(item):
                deferred.append(self.waiting.popleft())
                continue
            if rows + choices(item) > self.max_rows or not self._start(item):
                break
            self.prefilling.append(self.waiting.popleft())
            rows += choices(item)
            tokens = min(seq_of(item).remaining, budget)
            if not self.grow(seq_of(item), tokens):
                break
            planned.append((item, tokens))
            budget -= tokens
        self.waiting.extendleft(reversed(deferred))
        return planned

    def _prefix_in_flight(self, item: Work) -> bool:
        """Whether the first block of ``item`` that the cache lacks is being prefilled for another sequence now (the
        same system prompt, sent by several clients at once): it waits for it rather than computing it again."""
        if not self.prefilling or not self.pool.prefix_caching:
            return False
        chain = seq_of(item).chain
        missing = self.pool.cached_prefix(chain)
        if missing >= len(chain):
            return False
        size = self.pool.block_size
        return any(chain[missing] in seq_of(other).chain[seq_of(other).computed // size :] for other in self.prefilling)

    def _start(self, item: Work) -> bool:
        """Take ``item``'s cached prefix from the prefix cache, when the pool can hold the rest of it."""
        seq = seq_of(item)
        cached = self.pool.cached_prefix(seq.chain)
        reserved = sum(self._still_needed(other) for other in self.prefilling)
        if self._still_needed(item) + cached > self.pool.available - reserved:
            return False
        seq.blocks = self.pool.lookup(seq.chain, len(seq.tokens))
        seq.hashes = seq.chain[: len(seq.blocks)]
        seq.computed = len(seq.blocks) * self.pool.block_size
        if isinstance(item, EngineRequest):
            item.cached = seq.computed
        return True

    def preempt_prefill(self) -> Work | None:
        """The newest sequence being prefilled gives its blocks back and waits at the front of the line."""
        if not self.prefilling:
            return None
        item = self.prefilling.pop()
        self.requeue(item)
        return item

    def requeue(self, item: Work) -> None:
        seq = seq_of(item)
        self.free(seq)
        if isinstance(item, Row):  # computed again: its output so far, too
            seq.chain = prompt_chain(self._root, seq.tokens, self.pool.block_size)
        self.waiting.appendleft(item)
        self.preemptions += 1
