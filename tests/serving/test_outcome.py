"""Engine outcomes: usage, the client's error for a failed or aborted request, and the log line."""

from __future__ import annotations

import pytest

from app.engine.types import FinishEvent
from app.errors import EngineFailure, ServiceUnavailable
from app.serving.outcome import log_outcome, raise_for_finish, usage_of


def test_usage_counts_every_choice_and_the_prompt_once() -> None:
    finishes = [FinishEvent("r", "stop", 5, 3), FinishEvent("r", "length", 5, 4, index=1)]
    usage = usage_of(finishes, 5)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (5, 7, 12)


def test_failures_become_errors() -> None:
    raise_for_finish(FinishEvent("r", "stop", 1, 1))
    with pytest.raises(EngineFailure, match="boom"):
        raise_for_finish(FinishEvent("r", "error", 1, 0, error="boom"))
    with pytest.raises(ServiceUnavailable):
        raise_for_finish(FinishEvent("r", "abort", 1, 0))


def test_an_unfinished_request_is_logged_as_aborted_and_raises_nothing() -> None:
    log_outcome("r", "m", 2, [FinishEvent("r", "error", 1, 0, error="x")], 0.0, 1)


def test_a_finished_request_raises_its_engine_failure_after_logging() -> None:
    log_outcome("r", "m", 1, [FinishEvent("r", "stop", 1, 1)], 0.0, 1)
    with pytest.raises(EngineFailure):
        log_outcome("r", "m", 1, [FinishEvent("r", "error", 1, 0, error="x")], 0.0, 1)
