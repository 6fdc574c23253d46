"""A loaded model as serving code sees it when telemetry is on: the same interfaces, observed.

The registry wraps each model once, at load. ``ObservedEngine`` tracks every request it admits and, as the
engine's observer, is fed each delivery from the engine process once (not once per token read), so every
endpoint, present and future, is measured without code of its own. ``TracedRenderer`` puts templating and
tokenization in a span.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import structlog

from app.engine.loader import LoadedModel
from app.engine.types import (
    EngineClient,
    EngineEvent,
    EngineHealth,
    EventStream,
    FinishEvent,
    GenerationRequest,
    PromptRenderer,
    ServingModel,
    StepRecord,
    TokenEvent,
)
from app.observability.engine import EngineRequestTracker, record_steps
from app.observability.telemetry import Telemetry, annotate, current_scope, phase

log = structlog.get_logger(__name__)


def observe(loaded: LoadedModel, telemetry: Telemetry) -> ServingModel:
    """What the registry lends out for ``loaded``: observed when there is anything to record."""
    serving = loaded.serving
    if not telemetry.active:
        return serving
    engine = ObservedEngine(serving.engine, telemetry, serving.info.name)
    loaded.engine.observer = engine
    if not telemetry.tracing:
        return replace(serving, engine=engine)
    return replace(serving, engine=engine, renderer=TracedRenderer(serving.renderer))


class ObservedEngine:
    """An ``EngineClient`` that tracks each request it admits, and the engine's observer."""

    def __init__(self, engine: EngineClient, telemetry: Telemetry, model: str) -> None:
        self._engine, self._telemetry, self._model = engine, telemetry, model
        self._trackers: dict[str, EngineRequestTracker] = {}

    def generate(self, request: GenerationRequest) -> EventStream:
        events = self._engine.generate(request)  # admission errors propagate before anything is tracked
        scope = current_scope()
        if scope is not None and scope.traced:
            annotate(_request_attributes(self._model, request))
        self._trackers[request.request_id] = EngineRequestTracker(
            self._telemetry, scope, self._model, request.request_id, request.params.n, len(request.prompt_ids)
        )
        return events

    def abort(self, request_id: str) -> None:
        self._engine.abort(request_id)

    def health(self) -> EngineHealth:
        return self._engine.health()

    def delivered(self, batch: Sequence[tuple[str, Sequence[EngineEvent]]], steps: Sequence[StepRecord]) -> None:
        try:
            if steps:  # first: a request's last step links to it while it is still tracked
                record_steps(self._telemetry, self._model, steps)
            self._delivered(batch)
        except Exception:  # telemetry must never stop the engine's events from being read
            log.exception("telemetry_failed")

    def _delivered(self, batch: Sequence[tuple[str, Sequence[EngineEvent]]]) -> None:
        now = time.perf_counter()
        trackers = self._trackers
        for request_id, events in batch:
            tracker = trackers.get(request_id)
            if tracker is None:
                continue
            tokens = 0  # a row's list: its tokens since the last delivery, then maybe its finish
            for event in events:
                if event.__class__ is TokenEvent:
                    tokens += 1
                    continue
                if tokens:
                    tracker.tokens(tokens, now, event.index)
                    tokens = 0
                assert isinstance(event, FinishEvent)
                if tracker.finished(event.reason, event.prompt_tokens, event.completion_tokens, event.timing, now):
                    del trackers[request_id]
            if tokens:
                tracker.tokens(tokens, now, events[-1].index)


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
