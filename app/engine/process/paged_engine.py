"""The batching loop of a model with a paged KV cache: every step is one ragged forward of the running rows'
decode tokens and the prefill chunks the scheduler picks, within ``--max-num-batched-tokens``.

A row that needs a new block and finds the pool empty preempts the newest sequence (a prompt being prefilled
first, else the newest running row): its blocks go back to the pool and it waits at the front of the line to be
computed again (its prompt's blocks are usually still in the prefix cache). A request's ``n`` choices share the
prompt's blocks; each gets its own copy of a partial last block.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import structlog
import torch

from app.engine.process.batched_engine import BatchedEngine
from app.engine.process.kv_blocks import BlockPool, root_hash
from app.engine.process.paged_scheduler import PagedScheduler, Work, seq_of
from app.engine.process.prefill_budget import PrefillBudget
from app.engine.process.rows import EngineRequest, KVSeq, Row

log = structlog.get_logger(__name__)


class PagedEngine(BatchedEngine):
    """``BatchedEngine`` over a ``PagedRunner``: the same requests, rows, sampling and events; its own steps."""

    def __init__(self, runner: Any, tokenizer: Any, *, prefix_caching: bool = True, **kwargs: Any) -> None:
        self._pool = BlockPool(runner.kv.num_blocks, runner.kv.block_size, prefix_caching=prefix_caching)
        self._root = root_hash(kwargs["name"])
        super().__init__(runner, tokenizer, **kwargs)
        on_cpu = runner.kv.device.type == "cpu"
        self._budget = PrefillBudget(self._limits.max_num_batched_tokens, self._limits.cpu_prefill_s if on_cpu else 0)

    def _make_scheduler(self) -> PagedScheduler:
        return PagedScheduler(self._limits, self._max_rows, self._pool, self._root)

    @property
    def block_size(self) -> int:
        return self._pool.block_size

    @property
    def kv_stats(self) -> tuple[int, int, int, int, int]:
        """(blocks used, blocks in all, prefix-cache queries and hits in tokens, preemptions)."""
        pool = self._pool
        return pool.used, pool.num_blocks, pool.queries, pool.hits, self._scheduler.preemptions

    # -- one step -------------------------------------------------------------------------------
    def _step(self) -> None:
        decodes = self._schedule_decodes()
        planned = self._scheduler.plan(self._budget.tokens(len(decodes)), running=len(self._rows))
        if not decodes and not planned:
            return
        work = [(row, 1) for row in decodes] + planned
        entries = []
        for item, tokens in work:
            seq = seq_of(item)
            entries.append((list(seq.blocks), seq.computed, seq.tokens[seq.computed : seq.computed + tokens]))
        prompts = [item for item, _ in planned if isinstance(item, EngineRequest)]
        prefill_tokens = sum(tokens for _, tokens in planned)
        self._steps.prefilling(prompts, prefill_tokens)
        self._steps.decoding(decodes)
        try:
            started = time.perf_counter()
            logits = self._runner.forward(entries)
            self._budget.observe(prefill_tokens, len(decodes), time.perf_counter() - started)
        except Exception as exc:  # the forward pass cannot tell whose fault: everything in it fails
            log.exception("step_failed", rows=len(decodes), prefills=len(planned))
            self._fail_step(decodes, [item for item, _ in planned], str(exc))
            return
        for item, tokens in work:
            self._scheduler.computed(seq_of(item), tokens)
        self._sample(work, logits)

    def _schedule_decodes(self) -> list[Row]:
        """The running rows that get a decode token this step, each with a block for it (preempting when none)."""
        i = 0
        while i < len(self._rows):
            row = self._rows[i]
            if self._scheduler.grow(seq_of(row), 1):
                i += 1
            elif self._scheduler.preempt_prefill() is None:
                newest = self._rows.pop()
                self._scheduler.requeue(newest)
                log.info("engine_row_preempted", request_id=newest.owner.id, index=newest.index)
        return list(self._rows)

    def _sample(self, work: list[tuple[Work, int]], logits: torch.Tensor) -> None:
        """Rows whose tokens are all computed sample their next token; prompts that are whole become rows."""
        ready: list[Row] = []
        ready_logits: list[int] = []
        whole: list[tuple[EngineRequest, int]] = []
        for position, (item, _) in enumerate(work):
            if seq_of(item).remaining:
                continue
            if isinstance(item, Row):
                ready.append(item)
                ready_logits.append(position)
            else:
                whole.append((item, position))
        resumed = [row for row in ready if row not in self._rows]
        if resumed:
            self._scheduler.prefilling[:] = [p for p in self._scheduler.prefilling if p not in resumed]
            self._rows.extend(resumed)
        finished = self._advance(ready, logits[ready_logits]) if ready else set()
        self._remove({ready[i] for i in finished})
        for request, position in whole:
            self._scheduler.prefilling.remove(request)
            self._start_rows(request, logits[position : position + 1])

    def _start_rows(self, request: EngineRequest, logits: torch.Tensor) -> None:
        """A whole prompt becomes one row per choice (sharing its blocks), which samples its first token."""
        seq = seq_of(request)
        seqs = [seq]
        try:
            seqs += [self._fork(seq) for _ in range(request.open - 1)]
            rows = [Row(request, i, self._sampling(request, i), self._text(request), seq=s) for i, s in enumerate(seqs)]
        except Exception as exc:  # e.g. a sampling state that cannot be built: only this request fails
            log.exception("join_failed", requests=[request.id])
            for own in seqs:
                self._scheduler.free(own)
            self._fail_request(request, "error", str(exc))
            return
        request.seq = None
        self._rows.extend(rows)
        self._steps.joined([request])
        finished = self._advance(rows, logits.expand(len(rows), -1))
        self._remove({rows[i] for i in finished})

    def _fork(self, seq: KVSeq) -> KVSeq:
        """Another choice of the same prompt: its full blocks shared, a partial last block copied."""
        full = seq.computed // self._pool.block_size
        blocks = list(seq.blocks[:full])
        for block in blocks:
            self._pool.share(block)
        if full < len(seq.blocks):
            own = self._pool.allocate()
            self._runner.copy_block(seq.blocks[full], own)
            blocks.append(own)
        return KVSeq(list(seq.tokens), blocks, seq.computed, list(seq.hashes))

    # -- rows leaving ---------------------------------------------------------------------------
    def _accept(self, row: Row, draw: Any) -> bool:
        seq_of(row).tokens.append(draw.token_id)
        return super()._accept(row, draw)

    def _finish(self, row: Row, reason: Any, error: str | None = None) -> None:
        super()._finish(row, reason, error)
        self._scheduler.free(seq_of(row))

    def _remove(self, rows: set[Row]) -> None:
        if rows:
            self._rows = [row for row in self._rows if row not in rows]

    def _keep(self, indices: Sequence[int]) -> None:
        self._rows = [self._rows[i] for i in indices]

    def _fail_step(self, rows: list[Row], items: list[Work], error: str) -> None:
        for row in rows:
            self._finish(row, "error", error)
        self._remove(set(rows))
        for item in items:
            self._drop_waiting(item, "error", error)

    def _drop_waiting(self, item: Work, reason: Any, error: str | None = None) -> None:
        """A prompt or preempted row that is not running leaves (aborted, failed, or the loop is ending)."""
        if item in self._scheduler.prefilling:
            self._scheduler.prefilling.remove(item)
        self._scheduler.free(seq_of(item))
        if isinstance(item, Row):
            self._finish(item, reason, error)
        else:
            self._fail_request(item, reason, error)

    def _drop_aborted(self) -> None:
        with self._lock:
            if not self._aborted:
                return
            aborted, self._aborted = self._aborted, set()
        gone = [row for row in self._rows if row.owner.id in aborted]
        for row in gone:
            self._finish(row, "abort")
        self._remove(set(gone))
        for item in self._scheduler.withdraw(aborted):
            self._drop_waiting(item, "abort")

    # -- delivery -------------------------------------------------------------------------------
    def _deliver(self) -> None:
        waiting_rows = [item for item in self._scheduler.waiting if isinstance(item, Row)]
        prefilling_rows = [item for item in self._scheduler.prefilling if isinstance(item, Row)]
        used, _, queries, hits, preemptions = self.kv_stats
        live = [*self._rows, *self._scheduler.prefilling]
        counters = (queries, hits, preemptions, sum(seq_of(item).computed for item in live))
        busy, running = bool(self._rows), len(self._rows)
        if self._outbox.flush(busy=busy, running=running, kv_tokens=used * self.block_size, kv_counters=counters):
            for row in (*self._rows, *waiting_rows, *prefilling_rows):
                row.events.clear()
