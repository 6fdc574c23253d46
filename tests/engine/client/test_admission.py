"""The checks a request passes before it is sent to the engine process."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine.client.admission import admit
from app.engine.options import BatchLimits
from app.engine.types import GenerationRequest, SamplingParams
from app.errors import InvalidRequest, Overloaded


def check(
    prompt: list[int], *, waiting: int = 0, limits: BatchLimits | None = None, group: int = 1, **params: Any
) -> None:
    request = GenerationRequest("r", prompt, SamplingParams(**{"max_tokens": 8, **params}), group=group)
    admit(request, vocab_size=100, max_rows=4, limits=limits or BatchLimits(max_queue=2), waiting=waiting)


def test_a_request_within_every_limit_is_admitted() -> None:
    check([5, 6], n=4, waiting=1)


@pytest.mark.parametrize(
    ("prompt", "params", "param"),
    [
        ([5], {"n": 5}, "n"),
        ([], {}, "prompt"),
        ([5, 100], {}, "prompt"),
        ([-1, 5], {}, "prompt"),
    ],
)
def test_what_the_engine_cannot_serve_is_an_invalid_request(
    prompt: list[int], params: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        check(prompt, **params)
    assert info.value.param == param


def test_what_cannot_fit_the_kv_budget_even_alone_is_refused() -> None:
    limits = BatchLimits(max_kv_tokens=64)
    check(list(range(5, 45)), limits=limits, max_tokens=24)  # 64: fits alone
    with pytest.raises(InvalidRequest) as info:
        check(list(range(5, 45)), limits=limits, max_tokens=25)
    assert info.value.param == "max_tokens"


def test_a_full_waiting_line_is_overloaded() -> None:
    with pytest.raises(Overloaded):
        check([5], waiting=2)


def test_a_group_the_waiting_line_could_never_hold_is_an_invalid_request_even_when_idle() -> None:
    check([5], group=2)  # the line takes 2
    with pytest.raises(InvalidRequest) as info:
        check([5], group=3)
    assert info.value.status == 400 and info.value.param == "prompt"
    assert "--max-queue" in info.value.message and "never" in info.value.message


def test_a_group_that_fits_an_empty_line_is_overloaded_while_the_line_is_full() -> None:
    with pytest.raises(Overloaded) as info:
        check([5], group=2, waiting=2)
    assert info.value.status == 429 and info.value.headers["Retry-After"]


def test_a_request_that_could_never_fit_the_paged_pool_is_refused() -> None:
    """Four blocks of 16: a 40-token prompt shares its two full blocks; each choice needs its own partial block and
    the blocks its output fills."""

    def paged(n: int, max_tokens: int) -> None:
        request = GenerationRequest("r", list(range(40)), SamplingParams(max_tokens=max_tokens, n=n))
        admit(request, vocab_size=100, max_rows=4, limits=BatchLimits(), waiting=0, kv_blocks=(4, 16))

    paged(1, 24)  # 64 tokens: exactly four blocks
    paged(2, 8)  # 2 shared + 2 x 1
    for n, max_tokens in ((1, 25), (2, 9), (3, 1)):
        with pytest.raises(InvalidRequest, match="KV blocks") as info:
            paged(n, max_tokens)
        assert info.value.param == "max_tokens"
