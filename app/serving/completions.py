"""Legacy completions: a freeform prompt (or several, or token ids) on the same engine path as chat."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from app.engine.types import EngineEvent, EventStream, FinishEvent, GenerationRequest, PromptRenderer, TokenEvent
from app.errors import InvalidRequest, UnsupportedParameter
from app.models.registry import ModelRegistry
from app.protocol.completions import Completion, CompletionChoice, CompletionLogprobs, CompletionRequest
from app.serving.generation import SAMPLING_FIELDS, legacy_logprobs, log_outcome, raise_for_finish, usage_of
from app.serving.params import to_sampling_params


@dataclass(slots=True)
class _Prepared:
    id: str
    created: int
    model: str
    streams: list[EventStream]  # one per prompt; choice index = prompt index * n + choice
    n: int
    logprobs: bool
    echoes: list[str]  # text to put before each prompt's completions ("" without echo)
    prompt_tokens: int
    include_usage: bool
    started: float


def _check(req: CompletionRequest) -> None:
    if req.best_of is not None and req.best_of != (req.n or 1):
        raise UnsupportedParameter("best_of other than n is not supported.", param="best_of")
    if req.echo and req.logprobs is not None:
        raise UnsupportedParameter("echo with logprobs (prompt logprobs) is not supported.", param="echo")
    if req.suffix is not None and not isinstance(req.prompt, str):
        raise InvalidRequest("suffix needs a single text prompt.", param="suffix")


def _encode(req: CompletionRequest, renderer: PromptRenderer) -> list[list[int]]:
    """Blocking (tokenizers): run off the event loop."""
    prompt = req.prompt
    if isinstance(prompt, str):
        if req.suffix is not None:
            return [renderer.encode_fim(prompt, req.suffix)]
        return [renderer.encode_text(prompt, special_tokens=True)]
    if all(isinstance(item, str) for item in prompt):
        return [renderer.encode_text(text, special_tokens=True) for text in prompt]  # type: ignore[arg-type]
    if all(isinstance(item, int) for item in prompt):
        return [list(prompt)]  # type: ignore[arg-type]
    return [list(ids) for ids in prompt]  # type: ignore[union-attr]


class CompletionService:
    def __init__(self, registry: ModelRegistry, default_seed: int | None = None) -> None:
        self._registry = registry
        self._default_seed = default_seed

    async def prepare(self, req: CompletionRequest) -> _Prepared:
        """Validate, tokenize and admit every prompt; raises before any response is sent."""
        _check(req)
        ref = self._registry.resolve(req.model)
        request_id = f"cmpl-{uuid.uuid4().hex}"
        streams: list[EventStream] = []
        async with self._registry.lease(ref) as model:
            prompts = await asyncio.to_thread(_encode, req, model.renderer)
            fields = req.model_dump(include=set(SAMPLING_FIELDS), exclude_none=True)
            fields["max_tokens"], fields["logprobs"] = req.max_tokens, req.logprobs
            try:
                for i, ids in enumerate(prompts):
                    params = to_sampling_params(
                        fields, info=model.info, prompt_tokens=len(ids), default_seed=self._default_seed
                    )
                    streams.append(model.engine.generate(GenerationRequest(f"{request_id}-{i}", ids, params)))
            except BaseException:
                for stream in streams:  # admitted ones must not run on for nobody
                    stream.close()
                raise
            echoes = [""] * len(prompts)
            if req.echo and isinstance(req.prompt, str):
                echoes = [req.prompt]
            elif req.echo and all(isinstance(item, str) for item in req.prompt):
                echoes = list(req.prompt)  # type: ignore[arg-type]
            elif req.echo:
                echoes = [model.renderer.decode(ids) for ids in prompts]
        return _Prepared(
            id=request_id,
            created=int(time.time()),
            model=model.info.name,
            streams=streams,
            n=req.n or 1,
            logprobs=req.logprobs is not None,
            echoes=echoes,
            prompt_tokens=sum(len(ids) for ids in prompts),
            include_usage=bool(req.stream_options and req.stream_options.include_usage),
            started=time.monotonic(),
        )

    async def complete(self, p: _Prepared) -> Completion:
        texts: dict[int, list[str]] = {}
        logprobs: dict[int, list[CompletionLogprobs]] = {}
        finishes: dict[int, FinishEvent] = {}
        try:
            async for index, event in self._events(p):
                texts.setdefault(index, [p.echoes[index // p.n]]).append(event.text)
                if isinstance(event, FinishEvent):
                    finishes[index] = event
                elif p.logprobs:
                    offset = sum(len(t) for t in texts[index]) - len(event.text)
                    logprobs.setdefault(index, []).append(legacy_logprobs(event, offset))
        finally:
            self._close(p, finishes)
        choices = [
            CompletionChoice(
                index=i,
                text="".join(texts.get(i, [])),
                logprobs=_joined(logprobs.get(i, [])) if p.logprobs else None,
                finish_reason=finishes[i].reason,
            )
            for i in sorted(finishes)
        ]
        usage = usage_of(finishes, p.prompt_tokens)
        return Completion(id=p.id, created=p.created, model=p.model, choices=choices, usage=usage)

    async def stream(self, p: _Prepared) -> AsyncIterator[Completion]:
        def chunk(index: int, text: str, finish: str | None = None, lp: CompletionLogprobs | None = None):
            choice = CompletionChoice(index=index, text=text, logprobs=lp, finish_reason=finish)
            return Completion(id=p.id, created=p.created, model=p.model, choices=[choice])

        finishes: dict[int, FinishEvent] = {}
        offsets: dict[int, int] = {}
        try:
            for index in range(len(p.streams) * p.n):
                if echo := p.echoes[index // p.n]:
                    offsets[index] = len(echo)
                    yield chunk(index, echo)
            async for index, event in self._events(p):
                offset = offsets.get(index, 0)
                offsets[index] = offset + len(event.text)
                if isinstance(event, TokenEvent):
                    if event.text or event.logprobs:
                        yield chunk(index, event.text, lp=legacy_logprobs(event, offset) if p.logprobs else None)
                    continue
                finishes[index] = event
                raise_for_finish(event)
                yield chunk(index, event.text, finish=event.reason)
            if p.include_usage:
                yield Completion(
                    id=p.id, created=p.created, model=p.model, choices=[], usage=usage_of(finishes, p.prompt_tokens)
                )
        finally:
            self._close(p, finishes)

    async def _events(self, p: _Prepared) -> AsyncIterator[tuple[int, EngineEvent]]:
        """Every prompt's events as they come, with choice indexes across prompts."""
        if len(p.streams) == 1:
            async for event in p.streams[0]:
                yield event.index, event
            return
        queue: asyncio.Queue[tuple[int, EngineEvent] | None] = asyncio.Queue()

        async def pump(base: int, stream: EventStream) -> None:
            async for event in stream:
                await queue.put((base + event.index, event))
            await queue.put(None)

        tasks = [asyncio.ensure_future(pump(i * p.n, s)) for i, s in enumerate(p.streams)]
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

    def _close(self, p: _Prepared, finishes: dict[int, FinishEvent]) -> None:
        for stream in p.streams:
            stream.close()
        log_outcome(p.id, p.model, len(p.streams) * p.n, finishes, p.started, p.prompt_tokens)


def _joined(parts: list[CompletionLogprobs]) -> CompletionLogprobs:
    return CompletionLogprobs(
        tokens=[t for part in parts for t in part.tokens],
        token_logprobs=[lp for part in parts for lp in part.token_logprobs],
        top_logprobs=[top for part in parts for top in part.top_logprobs],
        text_offset=[o for part in parts for o in part.text_offset],
    )
