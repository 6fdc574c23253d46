"""The pipe's messages: each crosses a real multiprocessing pipe whole, and neither side takes a stranger."""

from __future__ import annotations

import multiprocessing

import pytest

from app.engine.messages import (
    Abort,
    Events,
    FromEngine,
    Generate,
    LoadFailed,
    Pool,
    Pooled,
    Progress,
    ProtocolError,
    Ready,
    Stop,
    ToEngine,
)
from app.engine.types import (
    FinishEvent,
    GenerationRequest,
    ModelInfo,
    PoolingRequest,
    PoolingResult,
    RequestTiming,
    SamplingParams,
    StepRecord,
    TokenEvent,
    TokenLogprob,
)

REQUEST = GenerationRequest("r1", [5, 6, 7], SamplingParams(max_tokens=4, stop=("x",), n=2))
INFO = ModelInfo(name="m", max_context=64, eos_token_ids=(2,), generation_defaults={"temperature": 0.7})
STEP = StepRecord(1, 2, ("r1",), 3, ("r1", "r1"))
EVENTS = Events(
    batch=[
        (
            "r1",
            [
                TokenEvent("r1", (9,), "hi", 1, (TokenLogprob(9, "hi", -0.5),)),
                FinishEvent("r1", "length", 3, 4, timing=RequestTiming(1, 2, 3, 4)),
            ],
        )
    ],
    running=1,
    kv_tokens=24,
    steps=[tuple(STEP)],  # type: ignore[list-item]
)
MESSAGES: list[ToEngine | FromEngine] = [
    Generate(REQUEST),
    Abort("r1"),
    Stop(),
    Progress("weights", 3, 10),
    Progress("config", None, None),
    Ready(INFO, 32),
    LoadFailed("OSError: no weights"),
    EVENTS,
    Pool([PoolingRequest("e-0", [1, 2, 3]), PoolingRequest("e-1", [1, 4], token_type_ids=[0, 1])]),
    Pooled([PoolingResult("e-0", [0.5, -0.25], 3), PoolingResult("e-1", None, 2, error="boom")], running=0),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_messages_cross_a_real_pipe_whole(message: ToEngine | FromEngine) -> None:
    parent, child = multiprocessing.get_context("spawn").Pipe(duplex=True)
    try:
        parent.send(message)
        received = child.recv()
    finally:
        parent.close()
        child.close()
    assert type(received) is type(message)
    assert received == message


def test_step_records_travel_as_plain_tuples_and_come_back_whole() -> None:
    assert type(EVENTS.steps[0]) is tuple
    assert StepRecord._make(EVENTS.steps[0]) == STEP


def test_an_unknown_message_is_a_protocol_error_naming_its_type() -> None:
    error = ProtocolError(("events", [], 0, 0, []))
    assert isinstance(error, Exception)
    assert "unexpected message on the engine pipe: tuple" in str(error)
