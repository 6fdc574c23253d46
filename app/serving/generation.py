"""An admitted generation, as an endpoint's run loop reads it: the engine streams of its prompts, and one
``Choice`` per output choice (its parser, what it produced so far, its finish). ``Preparer.prepare``
(``prepare.py``) makes it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from app.engine.types import EngineEvent, EventStream, FinishEvent, PromptLogprob, SamplingParams
from app.parsers.base import OutputParser, ParsedDelta
from app.protocol.common import Usage
from app.serving.outcome import log_outcome, usage_of
from app.serving.output import ChoiceOutput


@dataclass(slots=True)
class Choice:
    """One output choice while its events are read: its parser and what it produced so far."""

    index: int
    parser: OutputParser
    echo: str = ""  # text put before the output (completions' ``echo``)
    output: ChoiceOutput = field(default_factory=ChoiceOutput)
    logprobs: list[Any] = field(default_factory=list)  # in the endpoint's wire format
    finish: FinishEvent | None = None
    prompt_logprobs: tuple[PromptLogprob, ...] | None = None  # its prompt's, when asked for (first event)

    def read(self, event: EngineEvent) -> list[ParsedDelta]:
        """The parsed deltas of one event (the parser's tail with the finish)."""
        deltas = self.parser.feed(event.text)
        if isinstance(event, FinishEvent):
            deltas += self.parser.finish()
        return deltas

    @property
    def reasoning_tokens(self) -> int:
        """Counted token by token in the engine, so however events were grouped on the way."""
        return self.finish.reasoning_tokens if self.finish is not None else 0


@dataclass(slots=True)
class PreparedGeneration:
    """Admitted engine requests (one per prompt; choice index = prompt index * n + choice)."""

    id: str
    created: int
    model: str  # canonical name echoed in responses
    params: SamplingParams
    streams: list[EventStream]
    choices: list[Choice]
    prompt_tokens: int
    started: float

    @property
    def logprobs(self) -> bool:
        return self.params.logprobs is not None

    def finishes(self) -> list[FinishEvent]:
        return [choice.finish for choice in self.choices if choice.finish is not None]

    def usage(self, *, details: bool = False) -> Usage:
        """``details``: with ``completion_tokens_details.reasoning_tokens`` (chat)."""
        reasoning = sum(choice.reasoning_tokens for choice in self.choices) if details else None
        return usage_of(self.finishes(), self.prompt_tokens, reasoning)

    async def events(self) -> AsyncIterator[tuple[Choice, EngineEvent]]:
        """Every prompt's events as they come, each with its choice (whose ``finish`` is set on its end)."""
        if len(self.streams) == 1:  # read directly: no extra generator per event
            async for event in self.streams[0]:
                yield self._choice(0, event), event
        else:
            async for base, event in self._merged():
                yield self._choice(base, event), event

    def _choice(self, base: int, event: EngineEvent) -> Choice:
        choice = self.choices[base + event.index]
        if isinstance(event, FinishEvent):
            choice.finish = event
        if event.prompt_logprobs is not None:
            choice.prompt_logprobs = event.prompt_logprobs
        return choice

    async def _merged(self) -> AsyncIterator[tuple[int, EngineEvent]]:
        """Several prompts' streams read at once; each event with its prompt's first choice index."""
        n = self.params.n
        queue: asyncio.Queue[tuple[int, EngineEvent] | None] = asyncio.Queue()

        async def pump(base: int, stream: EventStream) -> None:
            async for event in stream:
                await queue.put((base, event))
            await queue.put(None)

        tasks = [asyncio.ensure_future(pump(i * n, stream)) for i, stream in enumerate(self.streams)]
        try:
            running = len(tasks)
            while running:
                item = await queue.get()
                if item is None:
                    running -= 1
                else:
                    yield item
        finally:
            for task in tasks:
                task.cancel()

    def close(self) -> None:
        """Always runs at the end: aborts what did not finish (client gone), logs the outcome once, then
        raises an engine failure as the client's error."""
        for stream in self.streams:
            stream.close()
        log_outcome(self.id, self.model, len(self.choices), self.finishes(), self.started, self.prompt_tokens)
