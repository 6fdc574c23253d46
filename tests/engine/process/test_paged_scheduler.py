"""Who a paged step prefills: chunks within the token budget, newcomers while rows and blocks allow."""

from __future__ import annotations

import itertools

from app.engine.options import BatchLimits
from app.engine.process.kv_blocks import BlockPool, root_hash
from app.engine.process.paged_scheduler import PagedScheduler
from app.engine.process.rows import EngineRequest
from app.engine.types import GenerationRequest, SamplingParams

_ids = itertools.count()
ROOT = root_hash("m@main")


def newcomer(prompt: list[int], n: int = 1) -> EngineRequest:
    request = GenerationRequest(f"r{next(_ids)}", prompt, SamplingParams(max_tokens=4, n=n))
    return EngineRequest(request, n, list(prompt))


def scheduler(blocks: int = 8, max_rows: int = 4) -> PagedScheduler:
    return PagedScheduler(BatchLimits(), max_rows, BlockPool(blocks, 4), ROOT)


def test_a_long_prompt_is_prefilled_in_chunks_of_the_budget() -> None:
    s = scheduler()
    long = newcomer(list(range(10)))
    s.add(long)
    assert s.plan(budget=4, running=0) == [(long, 4)]
    s.computed(long.seq, 4)  # type: ignore[arg-type]
    assert s.plan(budget=4, running=0) == [(long, 4)]
    s.computed(long.seq, 4)  # type: ignore[arg-type]
    assert s.plan(budget=4, running=0) == [(long, 2)]
    assert long.seq is not None and len(long.seq.blocks) == 3


def test_newcomers_wait_for_rows_and_for_blocks() -> None:
    s = scheduler(blocks=4, max_rows=2)
    first, second, third = newcomer([1] * 8), newcomer([2] * 8, n=2), newcomer([3] * 8)
    for request in (first, second, third):
        s.add(request)
    assert s.plan(budget=100, running=0) == [(first, 8)]  # the second's two choices would make three rows
    s.computed(first.seq, 8)  # type: ignore[arg-type]
    s.prefilling.remove(first)  # whole: the engine makes it a running row
    assert s.plan(budget=100, running=1) == []  # still three rows
    assert s.plan(budget=100, running=0) == []  # rows free now, but the first still holds two of four blocks
    s.free(first.seq)  # type: ignore[arg-type]  # the row finished
    assert s.plan(budget=100, running=0) == [(second, 8)]  # two blocks, and one more for its second choice
    s2 = scheduler(blocks=3, max_rows=4)
    a, b = newcomer([4] * 8), newcomer([5] * 8)
    s2.add(a)
    s2.add(b)
    assert s2.plan(budget=100, running=0) == [(a, 8)]  # b's two blocks are not free beside a's
    assert s2.pool.used == 2


def test_a_newcomer_takes_its_cached_prefix_and_prefills_the_rest() -> None:
    s = scheduler()
    first = newcomer(list(range(9)))
    s.add(first)
    s.plan(budget=100, running=0)
    s.computed(first.seq, 9)  # type: ignore[arg-type]
    s.prefilling.clear()
    s.free(first.seq)  # type: ignore[arg-type]  # the first request finished: its two full blocks stay cached
    again = newcomer([*range(9), 42])
    s.add(again)
    assert s.plan(budget=100, running=0) == [(again, 2)]
    assert again.cached == 8 and s.pool.hits == 8


def test_newcomers_sharing_a_prefix_being_prefilled_wait_for_it_instead_of_computing_it_again() -> None:
    s = scheduler(blocks=16)
    system = list(range(100, 112))  # three full blocks every request starts with
    first, second, other = newcomer([*system, 1, 2]), newcomer([*system, 3, 4, 5]), newcomer([7] * 6)
    for request in (first, second, other):
        s.add(request)
    assert s.plan(budget=100, running=0) == [(first, 14), (other, 6)]  # the second waits, in its place
    assert list(s.waiting) == [second]
    s.computed(first.seq, 14)  # type: ignore[arg-type]
    s.computed(other.seq, 6)  # type: ignore[arg-type]
    s.prefilling.clear()  # both prompts are whole: they run as rows now
    assert s.plan(budget=100, running=2) == [(second, 3)]  # the shared blocks are in the cache now
    assert second.cached == 12


def test_a_newcomer_does_not_wait_for_a_prefix_being_prefilled_without_prefix_caching() -> None:
    s = PagedScheduler(BatchLimits(), 4, BlockPool(16, 4, prefix_caching=False), ROOT)
    first, second = newcomer([*range(12), 1]), newcomer([*range(12), 2])
    s.add(first)
    s.add(second)
    assert s.plan(budget=100, running=0) == [(first, 13), (second, 13)]


def test_the_newest_prefill_is_preempted_and_waits_at_the_front() -> None:
    s = scheduler()
    older, newer = newcomer([1] * 6), newcomer([2] * 6)
    s.add(older)
    s.add(newer)
    s.plan(budget=100, running=0)
    assert s.preempt_prefill() is newer
    assert list(s.waiting) == [newer] and newer.seq is not None and newer.seq.blocks == []
    assert s.preemptions == 1
    assert [item.id for item in s.withdraw({older.id})] == [older.id]
    assert s.pool.used == 0
