"""Who runs next: arrival order within the token budget, rows and KV budget; chunked prefill bookkeeping."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from app.engine.options import BatchLimits
from app.engine.process.rows import EngineRequest
from app.engine.process.scheduler import Scheduler
from app.engine.types import GenerationRequest, SamplingParams

_ids = itertools.count()


def waiting(prompt_len: int, n: int = 1, inputs: dict[str, Any] | None = None) -> EngineRequest:
    request = GenerationRequest(f"r{next(_ids)}", [5] * prompt_len, SamplingParams(max_tokens=4, n=n), inputs)
    return EngineRequest(request, n, list(request.prompt_ids))


def scheduler(max_rows: int = 8, **limits: Any) -> Scheduler:
    return Scheduler(BatchLimits(max_batch_size=max_rows, **limits), max_rows)


def test_newcomers_are_picked_in_order_within_the_token_budget() -> None:
    s = scheduler()
    a, b, c = waiting(10), waiting(20), waiting(5)
    for r in (a, b, c):
        s.add(r)
    assert s.pick(budget=30, running=0, width=0) == [a, b]  # c would fit, but it comes after b: order is kept
    assert s.pending
    assert s.pick(budget=30, running=0, width=0) == [c]
    assert not s.pending


def test_rows_of_all_choices_must_fit_the_batch() -> None:
    s = scheduler(max_rows=4)
    first, second = waiting(3, n=2), waiting(3, n=2)
    s.add(first)
    s.add(second)
    assert s.pick(budget=100, running=1, width=3) == [first]  # 1 + 2 rows fit, 1 + 2 + 2 do not


def test_kv_budget_holds_back_what_does_not_fit_beside_the_running_rows() -> None:
    s = scheduler(max_kv_tokens=64)
    big = waiting(40)
    s.add(big)
    assert s.pick(budget=100, running=1, width=30) == []  # 2 rows x 40 wide > 64
    assert s.pick(budget=100, running=0, width=0) == [big]  # alone it is admitted


def test_media_requests_are_prefilled_alone() -> None:
    s = scheduler()
    text, media, other = waiting(3), waiting(3, inputs={"pixel_values": np.zeros(1)}), waiting(3)
    for r in (text, media, other):
        s.add(r)
    assert s.pick(budget=100, running=0, width=0) == [text]
    assert s.pick(budget=100, running=0, width=0) == [media]
    assert s.pick(budget=100, running=0, width=0) == [other]


def test_a_long_prompt_is_prefilled_chunk_by_chunk_then_joins() -> None:
    s = scheduler(max_rows=2)
    long = waiting(25, n=2)
    s.add(long)
    assert s.pick(budget=10, running=0, width=0) == []
    assert s.chunked is long
    assert s.next_chunk(10) == [5] * 10
    assert s.chunk_prefilled(10, running=0) is None
    assert s.next_chunk(10) == [5] * 10
    assert s.chunk_prefilled(10, running=0) is None
    assert s.next_chunk(10) == [5] * 5
    assert s.chunk_prefilled(5, running=0) is long
    assert s.chunked is None and not s.pending


def test_a_whole_chunked_prompt_that_no_longer_fits_is_prefilled_again_later() -> None:
    s = scheduler(max_rows=2)
    long, short = waiting(12), waiting(2)
    s.add(long)
    s.add(short)
    s.pick(budget=10, running=0, width=0)
    s.chunk_prefilled(10, running=0)
    s.chunk_prefilled(2, running=2)  # the batch filled up meanwhile
    assert long.done == 0
    assert s.chunked is None
    assert s.pick(budget=100, running=0, width=0) == [long, short]  # back at the front of the line


def test_aborted_requests_are_withdrawn_from_the_line_and_from_chunked_prefill() -> None:
    s = scheduler()
    long, a, b = waiting(30), waiting(3), waiting(3)
    for r in (long, a, b):
        s.add(r)
    s.pick(budget=10, running=0, width=0)
    assert s.chunked is long
    assert s.withdraw({long.id, b.id}) == [b, long]
    assert s.chunked is None
    assert s.drain() == [a]
    assert not s.pending


def test_a_failed_chunk_leaves_chunked_prefill() -> None:
    s = scheduler()
    long = waiting(30)
    s.add(long)
    s.pick(budget=10, running=0, width=0)
    assert s.chunk_failed() is long
    assert not s.pending
