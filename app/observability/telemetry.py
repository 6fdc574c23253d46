"""One app's telemetry, and the request scope every layer reaches through a context variable.

``Telemetry`` holds the tracer (None when tracing is off) and the request metrics (None with
``--no-metrics``). The HTTP middleware opens a ``RequestScope`` per request and makes it current; the code
below it (body validation, templating, the engine wrapper, SSE framing, the error handler) reports through
the functions of this module, which return at once when no scope is current or tracing is off.
"""

from __future__ import annotations

import contextlib
import time
from asyncio import CancelledError
from collections.abc import Mapping
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context

from app.observability.metrics import CONTENT_TYPE_LATEST, RequestMetrics, exposition, new_registry
from app.observability.tracing import (
    HEADERS,
    PROPAGATOR,
    trace_exporters,
    traceparent_trace_id,
    tracer_provider_from_env,
)

# gen_ai.operation.name of the endpoints that have one in the GenAI semantic conventions
OPERATIONS = {"/v1/chat/completions": "chat", "/v1/completions": "text_completion"}
_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()
_current: ContextVar[RequestScope | None] = ContextVar("hfserve_request_scope", default=None)


class Telemetry:
    def __init__(self, *, tracer_provider: TracerProvider | None = None, metrics: bool = True) -> None:
        self.provider = tracer_provider
        self.tracer: Tracer | None = tracer_provider.get_tracer("hfserve") if tracer_provider is not None else None
        self.registry = new_registry()
        self.metrics = RequestMetrics(self.registry) if metrics else None
        self.links: dict[str, Link] = {}  # engine request id -> link to its HTTP request's span (step spans)

    @classmethod
    def from_env(cls, *, metrics: bool = True) -> Telemetry:
        return cls(tracer_provider=tracer_provider_from_env(), metrics=metrics)

    @property
    def tracing(self) -> bool:
        return self.tracer is not None

    @property
    def active(self) -> bool:
        """Anything to record per request at all (with neither, requests take the bare path)."""
        return self.tracer is not None or self.metrics is not None

    def describe(self) -> dict[str, Any]:
        return {"tracing": trace_exporters() if self.tracing else [], "metrics": self.metrics is not None}

    def exposition(self) -> tuple[bytes, str]:
        return exposition(self.registry), CONTENT_TYPE_LATEST

    def shutdown(self) -> None:
        """Flush the spans still queued for export."""
        if self.provider is not None:
            self.provider.shutdown()

    # -- one HTTP request -------------------------------------------------------------------------
    def open_request(
        self, method: str, route: str, path: str, headers: Mapping[bytes, bytes], request_id: str
    ) -> RequestScope:
        scope = RequestScope(self, route)
        if self.tracer is None:
            scope.trace_id = traceparent_trace_id(headers.get(b"traceparent"))
            return scope
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "http.route": route,
            "url.path": path,
            "http.request.header.x-request-id": (request_id,),
        }
        if route in OPERATIONS:
            attributes["gen_ai.operation.name"] = OPERATIONS[route]
        if agent := headers.get(b"user-agent"):
            attributes["user_agent.original"] = agent.decode("latin-1")[:256]
        parent = PROPAGATOR.extract(headers, getter=HEADERS)
        span = self.tracer.start_span(f"{method} {route}", context=parent, kind=SpanKind.SERVER, attributes=attributes)
        span_context = span.get_span_context()
        scope.trace_id = format(span_context.trace_id, "032x")
        if span.is_recording():  # sampled out: no child spans, but the trace id still goes to the logs
            scope.span, scope.context, scope.link = span, set_span_in_context(span), Link(span_context)
        return scope

    def close_request(self, scope: RequestScope, status: int, complete: bool) -> None:
        abandoned = scope.disconnected and not complete
        reasons = sorted(scope.finish_reasons)
        if (metrics := self.metrics) is not None:
            model, endpoint = scope.model, scope.endpoint
            status_label = "499" if abandoned else str(status)
            metrics.requests.labels(model, endpoint, status_label, ",".join(reasons) or "none").inc()
            if abandoned:
                metrics.disconnects.labels(model, endpoint).inc()
            elif scope.error_type is not None or status >= 400:
                metrics.errors.labels(endpoint, scope.error_type or f"http_{status}").inc()
            if model:
                metrics.e2e.labels(model, endpoint).observe(time.perf_counter() - scope.started)
        span = scope.span
        if span is None:
            return
        span.set_attribute("http.response.status_code", status)
        if scope.model:
            span.set_attributes(
                {
                    "gen_ai.response.model": scope.model,
                    "gen_ai.usage.input_tokens": scope.input_tokens,
                    "gen_ai.usage.output_tokens": scope.output_tokens,
                    "gen_ai.response.finish_reasons": reasons,
                }
            )
        if scope.first_token is not None:
            span.set_attribute("gen_ai.response.time_to_first_chunk", scope.first_token - scope.started)
        if abandoned:
            span.set_attribute("hfserve.client_disconnected", True)
        if scope.error_type is not None:
            span.set_attribute("error.type", scope.error_type)
        if status >= 500 or scope.error_status >= 500:
            span.set_status(Status(StatusCode.ERROR, scope.error_type))
        span.end()

    @staticmethod
    def enter(scope: RequestScope) -> tuple[Token[RequestScope | None], object | None]:
        token = _current.set(scope)
        return token, otel_context.attach(scope.context) if scope.context is not None else None

    @staticmethod
    def leave(tokens: tuple[Token[RequestScope | None], object | None]) -> None:
        scope_token, otel_token = tokens
        if otel_token is not None:
            otel_context.detach(otel_token)  # type: ignore[arg-type]
        _current.reset(scope_token)


class RequestScope:
    """What is known about one HTTP request while it is served."""

    __slots__ = (
        "context",
        "disconnected",
        "endpoint",
        "error_status",
        "error_type",
        "finish_reasons",
        "first_token",
        "input_tokens",
        "link",
        "model",
        "output_tokens",
        "span",
        "started",
        "telemetry",
        "trace_id",
    )

    def __init__(self, telemetry: Telemetry, endpoint: str) -> None:
        self.telemetry, self.endpoint = telemetry, endpoint
        self.started = time.perf_counter()
        self.span: Span | None = None  # the server span, when tracing and sampled
        self.context: otel_context.Context | None = None  # holding that span: the parent of child spans
        self.link: Link | None = None  # to that span, for the engine steps the request takes part in
        self.trace_id: str | None = None
        self.model = ""  # set once a loaded model serves it
        self.first_token: float | None = None  # perf_counter
        self.finish_reasons: set[str] = set()
        self.input_tokens = self.output_tokens = 0
        self.error_type: str | None = None
        self.error_status = 0
        self.disconnected = False


def current_scope() -> RequestScope | None:
    return _current.get()


class _Phase:
    """A child span of the current request, around one stage of its work."""

    __slots__ = ("_attributes", "_context", "_name", "_span", "_tracer")

    def __init__(self, tracer: Tracer, name: str, context: Any, attributes: Mapping[str, Any] | None) -> None:
        self._tracer, self._name, self._context, self._attributes = tracer, name, context, attributes
        self._span: Span | None = None

    def __enter__(self) -> Span:
        self._span = self._tracer.start_span(self._name, context=self._context, attributes=self._attributes)
        return self._span

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        span = self._span
        assert span is not None
        if isinstance(exc, GeneratorExit | CancelledError):  # the client left, or the work was cancelled
            span.set_attribute("hfserve.cancelled", True)
        elif exc is not None:
            span.record_exception(exc)
            span.set_attribute("error.type", getattr(exc, "code", None) or type(exc).__name__)
            if isinstance(exc, Exception) and getattr(exc, "status", 500) >= 500:
                span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
        span.end()


def phase(name: str, attributes: Mapping[str, Any] | None = None) -> contextlib.AbstractContextManager[Span | None]:
    """``with phase("validate") as span:`` a child span of the current request; ``span`` is None (and nothing
    is recorded) when tracing is off or no request is current."""
    scope = _current.get()
    if scope is None or scope.context is None:
        return _NOTHING
    return _Phase(scope.telemetry.tracer, name, scope.context, attributes)  # type: ignore[arg-type]


def media_span(stage: str, **attributes: Any) -> contextlib.AbstractContextManager[Span | None]:
    """For fetching and decoding media: ``with media_span("fetch", **{"url.scheme": "https"}):``, then
    ``media_span("decode", **{"hfserve.media.kind": "image"})``. Never put a URL's path or query in it."""
    return phase(f"media.{stage}", attributes)


def annotate(attributes: Mapping[str, Any]) -> None:
    """Attributes for the current request's span (when there is one)."""
    scope = _current.get()
    if scope is not None and scope.span is not None:
        scope.span.set_attributes(attributes)


def note_error(code: str, status: int) -> None:
    """The error this request answers with (or sends mid-stream): counted once, when the request ends."""
    scope = _current.get()
    if scope is not None:
        scope.error_type, scope.error_status = code, status


def outcome_fields(response_id: str) -> dict[str, Any]:
    """Fields for the request's ``request_finished`` line: time to first token, once known."""
    scope = _current.get()
    if scope is None:
        return {}
    if scope.span is not None:
        scope.span.set_attribute("gen_ai.response.id", response_id)
    if scope.first_token is None:
        return {}
    return {"ttft_ms": round((scope.first_token - scope.started) * 1000, 1)}
