"""Test doubles for the engine contract: scripted event streams and a prepared generation over them."""

from __future__ import annotations

from collections.abc import Iterable

from app.engine.types import EngineEvent, SamplingParams
from app.parsers.base import OutputParser, PlainTextParser
from app.serving.generation import Choice, PreparedGeneration


class ScriptedEvents:
    """Plays back engine events as an ``EventStream`` would."""

    def __init__(self, events: Iterable[EngineEvent]) -> None:
        self._events = iter(events)
        self.closed = False

    def __aiter__(self) -> ScriptedEvents:
        return self

    async def __anext__(self) -> EngineEvent:
        try:
            return next(self._events)
        except StopIteration:
            raise StopAsyncIteration from None

    def close(self) -> None:
        self.closed = True


def prepared(
    *prompts: Iterable[EngineEvent],
    n: int = 1,
    parser: type[OutputParser] | None = None,
    logprobs: int | None = None,
    echoes: tuple[str, ...] = (),
) -> PreparedGeneration:
    """One scripted stream per prompt, ``n`` choices each (a fresh ``parser`` per choice)."""
    return PreparedGeneration(
        id="req-1",
        created=0,
        model="m@main",
        params=SamplingParams(max_tokens=16, n=n, logprobs=logprobs),
        streams=[ScriptedEvents(events) for events in prompts],
        choices=[
            Choice(i * n + c, (parser or PlainTextParser)(), echo=echoes[i] if echoes else "")
            for i in range(len(prompts))
            for c in range(n)
        ],
        prompt_tokens=3 * len(prompts),
        started=0.0,
    )


def closed(generation: PreparedGeneration) -> bool:
    return all(isinstance(s, ScriptedEvents) and s.closed for s in generation.streams)
