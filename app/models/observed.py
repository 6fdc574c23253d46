"""A loaded model as serving code sees it when telemetry is on: the same interfaces, observed.

The registry wraps each model once, at load. ``ObservedEngine`` times every request's events on their way
to serving code (first token, gaps, tokens, the engine's own timing) and ``TracedRenderer`` puts templating
and tokenization in a span. So every endpoint, present and future, is observed without code of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from app.engine.loader import LoadedModel
from app.engine.types import (
    EngineClient,
    EngineEvent,
    EngineHealth,
    EventStream,
    GenerationRequest,
    PromptRenderer,
    ServingModel,
    TokenEvent,
)
from app.observability.engine import EngineRequestTracker, record_steps
from app.observability.telemetry import Telemetry, annotate, current_scope, phase


def observe(loaded: LoadedModel, telemetry: Telemetry) -> ServingModel:
    """What the registry lends out for ``loaded``: observed when there is anything to record."""
    serving = loaded.serving
    if not telemetry.active:
        return serving
    engine = ObservedEngine(serving.engine, telemetry, serving.info.name)
    if not telemetry.tracing:
        return replace(serving, engine=engine)
    loaded.engine.on_steps = partial(record_steps, telemetry, serving.info.name)
    return replace(serving, engine=engine, renderer=TracedRenderer(serving.renderer))


class ObservedStream:
    __slots__ = ("_events", "_tracker")

    def __init__(self, events: EventStream, tracker: EngineRequestTracker) -> None:
        self._events, self._tracker = events, tracker

    def __aiter__(self) -> ObservedStream:
        return self

    async def __anext__(self) -> EngineEvent:
        event = await self._events.__anext__()
        if event.__class__ is TokenEvent:
            self._tracker.tokens(len(event.token_ids))  # type: ignore[union-attr]
        else:
            self._tracker.finished(event.reason, event.prompt_tokens, event.completion_tokens, event.timing)  # type: ignore[union-attr]
        return event

    def close(self) -> None:
        self._events.close()
        self._tracker.close()

    def __del__(self) -> None:  # dropped unread: the inner stream aborts itself; end the tracking too
        self._tracker.close()


class ObservedEngine:
    """An ``EngineClient`` that tracks each request it admits."""

    def __init__(self, engine: EngineClient, telemetry: Telemetry, model: str) -> None:
        self._engine, self._telemetry, self._model = engine, telemetry, model

    def generate(self, request: GenerationRequest) -> EventStream:
        events = self._engine.generate(request)  # admission errors propagate before anything is tracked
        scope = current_scope()
        if scope is not None and scope.span is not None:
            annotate(_request_attributes(self._model, request))
        tracker = EngineRequestTracker(
            self._telemetry, scope, self._model, request.request_id, request.params.n, len(request.prompt_ids)
        )
        return ObservedStream(events, tracker)

    def abort(self, request_id: str) -> None:
        self._engine.abort(request_id)

    def health(self) -> EngineHealth:
        return self._engine.health()


def _request_attributes(model: str, request: GenerationRequest) -> dict[str, Any]:
    params = request.params
    attributes: dict[str, Any] = {
        "gen_ai.request.model": model,
        "gen_ai.request.max_tokens": params.max_tokens,
        "gen_ai.request.temperature": params.temperature,
        "gen_ai.request.top_p": params.top_p,
        "gen_ai.request.choice.count": params.n,
    }
    if params.top_k:
        attributes["gen_ai.request.top_k"] = params.top_k
    if params.seed is not None:
        attributes["gen_ai.request.seed"] = params.seed
    if params.presence_penalty:
        attributes["gen_ai.request.presence_penalty"] = params.presence_penalty
    if params.frequency_penalty:
        attributes["gen_ai.request.frequency_penalty"] = params.frequency_penalty
    return attributes


class TracedRenderer:
    """Templating and tokenization in a ``tokenize`` span (they run in a worker thread, which carries the
    request's context)."""

    def __init__(self, renderer: PromptRenderer) -> None:
        self._renderer = renderer

    def encode_chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        template_kwargs: Mapping[str, Any] | None = None,
    ) -> list[int]:
        with phase("tokenize", {"hfserve.prompt.kind": "chat_template"}) as span:
            ids = self._renderer.encode_chat(messages, tools=tools, template_kwargs=template_kwargs)
            if span is not None:
                span.set_attribute("hfserve.prompt.tokens", len(ids))
            return ids

    def encode_text(self, text: str, *, special_tokens: bool = False) -> list[int]:
        with phase("tokenize", {"hfserve.prompt.kind": "text"}) as span:
            ids = self._renderer.encode_text(text, special_tokens=special_tokens)
            if span is not None:
                span.set_attribute("hfserve.prompt.tokens", len(ids))
            return ids

    def encode_fim(self, prefix: str, suffix: str) -> list[int]:
        with phase("tokenize", {"hfserve.prompt.kind": "fill_in_the_middle"}) as span:
            ids = self._renderer.encode_fim(prefix, suffix)
            if span is not None:
                span.set_attribute("hfserve.prompt.tokens", len(ids))
            return ids

    def decode(self, ids: list[int]) -> str:
        return self._renderer.decode(ids)
