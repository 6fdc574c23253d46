"""What the batching loop keeps per request: its id, its timing stamps, and identity (not value) equality."""

from __future__ import annotations

import time

from app.engine.process.rows import EngineRequest
from app.engine.types import GenerationRequest, SamplingParams


def engine_request(request_id: str = "req-1") -> EngineRequest:
    request = GenerationRequest(request_id, [1, 2, 3], SamplingParams(max_tokens=4, n=2))
    return EngineRequest(request, request.params.n, list(request.prompt_ids))


def test_a_new_request_has_arrived_and_nothing_else() -> None:
    before = time.time_ns()
    req = engine_request()
    assert req.id == "req-1" and req.open == 2 and req.done == 0
    assert before <= req.arrived <= time.time_ns()
    assert (req.scheduled, req.first_token) == (0, 0)


def test_timing_stamps_the_finish_when_asked() -> None:
    req = engine_request()
    req.scheduled = req.arrived + 10
    req.first_token = req.arrived + 20
    first = req.timing()
    assert (first.arrived, first.scheduled, first.first_token) == (req.arrived, req.arrived + 10, req.arrived + 20)
    assert first.finished >= req.arrived
    assert req.timing().finished >= first.finished  # each choice finishes at its own time


def test_requests_are_compared_by_identity() -> None:
    a, b = engine_request(), engine_request()
    assert a != b and a == a
    assert len({a, b}) == 2  # hashable: the loop keys its bookkeeping by request
