"""The outbox: one ``Events`` message per hand-over, held back between intervals while rows are busy."""

from __future__ import annotations

from app.engine.messages import Events
from app.engine.process.outbox import Outbox
from app.engine.types import EngineEvent, FinishEvent, StepRecord, TokenEvent


def test_a_hand_over_sends_the_collected_events_steps_and_load() -> None:
    sent: list[Events] = []
    outbox = Outbox(sent.append, interval=0.0)
    assert outbox.flush(busy=True, running=0)  # nothing collected: nothing sent
    assert sent == []
    events: list[EngineEvent] = [TokenEvent("a", (1,), "x")]
    outbox.add("a", events)
    outbox.steps.append(StepRecord(1, 2, ("a",), 3, ()))
    assert outbox.flush(busy=True, running=1)
    [message] = sent
    assert message.batch == [("a", [TokenEvent("a", (1,), "x")])]
    assert message.running == 1
    assert message.steps == [(1, 2, ("a",), 3, ())] and type(message.steps[0]) is tuple
    events.clear()  # the engine reuses its lists: what was sent is a copy
    assert message.batch[0][1] and outbox.steps == []


def test_busy_rows_keep_collecting_until_the_interval_has_passed() -> None:
    sent: list[Events] = []
    outbox = Outbox(sent.append, interval=3600.0)
    first: list[EngineEvent] = [TokenEvent("a", (1,), "x")]
    outbox.add("a", first)
    assert outbox.flush(busy=False, running=1)  # an idle engine hands over at once
    first.clear()
    second: list[EngineEvent] = [TokenEvent("a", (2,), "y")]
    outbox.add("a", second)
    assert not outbox.flush(busy=True, running=1)  # within the interval: held back, the list stays registered
    second.append(FinishEvent("a", "length", 1, 2))
    assert outbox.flush(busy=False, running=0)
    assert [len(m.batch[0][1]) for m in sent] == [1, 2]
