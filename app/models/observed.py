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

from app.engine.architectures import POOLING_TASKS
from app.engine.client.loader import LoadedModel
from app.engine.types import (
    EncodedPrompt,
    EngineClient,
    EngineEvent,
    EngineHealth,
    EventStream,
    FinishEvent,
    GenerationRequest,
    MediaInputs,
    ServingModel,
    SpeechInput,
    SpeechTask,
    StepRecord,
    TokenEvent,
)
from app.observability.request_tracker import EngineRequestTracker, record_steps
from app.observability.telemetry import Telemetry, annotate, current_scope, phase

log = structlog.get_logger(__name__)


def observe(loaded: LoadedModel, telemetry: Telemetry) -> ServingModel:
    """What the registry lends out for ``loaded``: observed when there is anything to record."""
    serving = loaded.serving
    if not telemetry.active or serving.info.task in POOLING_TASKS:
        return serving  # a pooling engine: its requests are observed by the request middleware alone
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
        self._itl = telemetry.metrics.itl.labels(model) if telemetry.metrics is not None else None
        self._last_delivery = 0.0

    def generate(self, request: GenerationRequest) -> EventStream:
        admitted = time.time_ns()
        events = self._engine.generate(request)  # admission errors propagate before anything is tracked
        scope = current_scope()
        if scope is not None and scope.traced:
            annotate(_request_attributes(self._model, request))
        self._trackers[request.request_id] = EngineRequestTracker(
            self._telemetry,
            scope,
            self._model,
            request.request_id,
            request.params.n,
            len(request.prompt_ids),
            admitted=admitted,
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
        """Once per message, a few operations per row: every running row gets a token each step, so the
        gap since the previous message is the gap between consecutive tokens of every row in this one
        (divided among the tokens a row got, when deliveries are spaced by ``--stream-interval-ms``)."""
        now = time.perf_counter()
        trackers = self._trackers
        gaps = together = steps = 0  # tokens after an earlier message's; after the first, in its message
        for request_id, events in batch:
            tracker = trackers.get(request_id)
            if tracker is None:
                continue
            tokens = len(events)
            if events[-1].__class__ is not TokenEvent:  # finishes: rare, once per choice
                tokens = sum(1 for e in events if e.__class__ is TokenEvent)
            if tokens:
                if tracker.started:
                    gaps += tokens
                    steps = max(steps, tokens)
                else:
                    tracker.first_token(now)
                    together += tokens - 1
            if tokens < len(events):
                for event in events:
                    if event.__class__ is FinishEvent and tracker.finished(
                        event.reason, event.prompt_tokens, event.completion_tokens, event.timing, now
                    ):
                        del trackers[request_id]
        if self._itl is not None:
            observe = self._itl.observe  # once per token: these tokens share their gap
            if gaps:
                gap = (now - self._last_delivery) / steps
                for _ in range(gaps):
                    observe(gap)
            for _ in range(together):
                observe(0.0)
        self._last_delivery = now


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
    request's context). Whatever else the wrapped renderer offers (a media processor's or a speech model's
    methods) is reached through it unchanged; a speech model's feature extraction is traced the same way."""

    def __init__(self, renderer: Any) -> None:
        self._renderer = renderer

    def __getattr__(self, name: str) -> Any:  # only called for what this class does not define
        if name == "_renderer":  # not set yet (a copy being made): never recurse
            raise AttributeError(name)
        return getattr(self._renderer, name)

    def encode_chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        template_kwargs: Mapping[str, Any] | None = None,
        special_tokens: bool = False,
    ) -> list[int]:
        with phase("tokenize", {"hfserve.prompt.kind": "chat_template"}) as span:
            ids = self._renderer.encode_chat(
                messages, tools=tools, template_kwargs=template_kwargs, special_tokens=special_tokens
            )
            _count(span, ids)
            return ids

    def encode_chat_media(
        self,
        messages: list[dict[str, Any]],
        media: MediaInputs,
        *,
        tools: list[dict[str, Any]] | None = None,
        template_kwargs: Mapping[str, Any] | None = None,
        special_tokens: bool = False,
    ) -> EncodedPrompt:
        present = (("image", media.images), ("audio", media.audios), ("video", media.videos))
        kinds = tuple(kind for kind, items in present if items)
        with phase("tokenize", {"hfserve.prompt.kind": "chat_template", "hfserve.media.kinds": kinds}) as span:
            encoded = self._renderer.encode_chat_media(
                messages, media, tools=tools, template_kwargs=template_kwargs, special_tokens=special_tokens
            )
            _count(span, encoded.ids)
            return encoded

    def encode_text(self, text: str, *, special_tokens: bool = False) -> list[int]:
        with phase("tokenize", {"hfserve.prompt.kind": "text"}) as span:
            ids = self._renderer.encode_text(text, special_tokens=special_tokens)
            _count(span, ids)
            return ids

    def encode_fim(self, prefix: str, suffix: str) -> list[int]:
        with phase("tokenize", {"hfserve.prompt.kind": "fill_in_the_middle"}) as span:
            ids = self._renderer.encode_fim(prefix, suffix)
            _count(span, ids)
            return ids

    def prepare(
        self,
        samples: Any,
        *,
        language: str | None,
        prompt: str | None,
        timestamps: bool,
        task: SpeechTask = "transcribe",
    ) -> SpeechInput:
        with phase("tokenize", {"hfserve.prompt.kind": "audio_features"}) as span:
            speech = self._renderer.prepare(samples, language=language, prompt=prompt, timestamps=timestamps, task=task)
            _count(span, speech.prompt_ids)
            return speech

    def decode(self, ids: list[int]) -> str:
        return self._renderer.decode(ids)


def _count(span: Any, ids: Sequence[int]) -> None:
    if span is not None:
        span.set_attribute("hfserve.prompt.tokens", len(ids))
