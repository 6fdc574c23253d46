"""One request's media budget: bytes and audio seconds taken until the limits, shared across threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from app.media.failures import MediaError
from app.media.limits import Budget, MediaLimits


def test_bytes_are_taken_until_the_limit() -> None:
    budget = Budget(MediaLimits(max_bytes=100))
    budget.take_bytes(60)
    budget.take_bytes(40)
    assert budget.bytes_left == 0
    with pytest.raises(MediaError, match="exceed 100 bytes") as caught:
        budget.take_bytes(1)
    assert caught.value.kind == "too_large" and budget.bytes_left == 0


def test_seconds_are_taken_until_the_limit_with_rounding_slack() -> None:
    budget = Budget(MediaLimits(max_audio_seconds=3.0))
    budget.take_seconds(1.0)
    budget.take_seconds(2.0000001)  # float noise from decoded durations is not a violation
    with pytest.raises(MediaError, match="longer than 3 s") as caught:
        budget.take_seconds(0.5)
    assert caught.value.kind == "too_large"


def test_a_refused_take_leaves_the_budget_unchanged() -> None:
    budget = Budget(MediaLimits(max_bytes=10, max_audio_seconds=5.0))
    with pytest.raises(MediaError):
        budget.take_bytes(11)
    with pytest.raises(MediaError):
        budget.take_seconds(6.0)
    assert (budget.bytes_left, budget.seconds_left) == (10, 5.0)


def test_parallel_takes_never_overdraw() -> None:
    budget = Budget(MediaLimits(max_bytes=1000))

    def take(_: int) -> bool:
        try:
            budget.take_bytes(7)
        except MediaError:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        granted = sum(pool.map(take, range(400)))
    assert granted == 1000 // 7 and budget.bytes_left == 1000 - 7 * granted
