"""One app's telemetry, and the request scope every layer reaches through a context variable.

``Telemetry`` holds the span writer (None when tracing is off) and the request metrics (None with
``--no-metrics``). The HTTP middleware opens a ``RequestScope`` per request and makes it current; the code
below it (body validation, templating, the engine wrapper, SSE framing, the error handler) reports through
the functions of this module, which return at once when no scope is current or tracing is off.
"""

from __future__ import annotations

import contextlib
import time
from asyncio import CancelledError
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from typing import Any

import structlog
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.trace import SpanKind

from app.observability.export import resource, start_export_process
from app.observability.metrics import CONTENT_TYPE_LATEST, RequestMetrics, exposition, new_registry
from app.observability.spans import (
    ERROR,
    INTERNAL,
    SERVER,
    UNSET,
    ExportProcessWriter,
    LinkedSpan,
    SpanExporterWriter,
    SpanRecord,
    SpanWriter,
    new_span_id,
    new_trace_id,
)
from app.observability.tracing import (
    DEFAULT_SAMPLER,
    incoming_context,
    sampler_from_env,
    trace_exporters,
    traceparent_trace_id,
)

log = structlog.get_logger(__name__)

# gen_ai.operation.name of the endpoints that have one in the GenAI semantic conventions
OPERATIONS = {"/v1/chat/completions": "chat", "/v1/completions": "text_completion"}
_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()
_current: ContextVar[RequestScope | None] = ContextVar("hfserve_request_scope", default=None)


class Telemetry:
    """``exporters``: where spans go (``otlp``: the export process, ``console``); ``span_exporter``: an SDK
    exporter to hand spans to directly instead (tests: the in-memory one)."""

    def __init__(
        self,
        *,
        metrics: bool = True,
        exporters: list[str] | None = None,
        span_exporter: SpanExporter | None = None,
        sampler: Sampler | None = None,
        log_setup: Callable[[], None] | None = None,
    ) -> None:
        self.exporters = list(exporters or [])
        self.writer: SpanWriter | None = SpanExporterWriter(span_exporter) if span_exporter is not None else None
        self.tracing = bool(self.exporters) or self.writer is not None
        self.sampler = sampler or DEFAULT_SAMPLER
        self._follow_parent = self.sampler is DEFAULT_SAMPLER  # sampled unless the caller's trace is not
        self.registry = new_registry()
        self.metrics = RequestMetrics(self.registry) if metrics else None
        self.links: dict[str, LinkedSpan] = {}  # engine request id -> its request's span
        self._log_setup = log_setup
        self._process: Any = None

    @classmethod
    def from_env(cls, *, metrics: bool = True, log_setup: Callable[[], None] | None = None) -> Telemetry:
        exporters = trace_exporters()
        sampler = sampler_from_env() if exporters else None
        return cls(metrics=metrics, exporters=exporters, sampler=sampler, log_setup=log_setup)

    @property
    def active(self) -> bool:
        """Anything to record per request at all (with neither, requests take the bare path)."""
        return self.tracing or self.metrics is not None

    def start(self) -> None:
        """Start exporting (at app start-up: the export process is spawned here, not at import)."""
        if self.writer is not None or not self.exporters:
            return
        if "otlp" in self.exporters:
            self._process, conn = start_export_process(self._log_setup)
            self.writer = ExportProcessWriter(conn)
        else:
            self.writer = SpanExporterWriter(ConsoleSpanExporter(), resource())

    def shutdown(self, timeout: float = 10.0) -> None:
        """Deliver the spans still pending, then stop the export process."""
        if self.writer is not None:
            self.writer.close()
        if self._process is not None:
            self._process.join(timeout)
            if self._process.is_alive():
                self._process.kill()

    def describe(self) -> dict[str, Any]:
        return {"tracing": self.exporters or ("in-process" if self.tracing else []), "metrics": bool(self.metrics)}

    def exposition(self) -> tuple[bytes, str]:
        return exposition(self.registry), CONTENT_TYPE_LATEST

    def write(self, record: SpanRecord) -> None:
        if self.writer is not None:
            self.writer.write(record)

    # -- one HTTP request -------------------------------------------------------------------------
    def open_request(
        self, method: str, route: str, path: str, headers: Mapping[bytes, bytes], request_id: str
    ) -> RequestScope:
        scope = RequestScope(self, route)
        if not self.tracing:
            scope.trace_id_hex = traceparent_trace_id(headers.get(b"traceparent"))
            return scope
        context, parent = incoming_context(headers)
        trace_id = parent.trace_id if parent is not None else new_trace_id()
        name = f"{method} {route}"
        if self._follow_parent:  # what ParentBased(ALWAYS_ON) decides, without building its result
            sampled = parent is None or parent.trace_flags.sampled
        else:
            sampled = self.sampler.should_sample(context, trace_id, name, SpanKind.SERVER).decision.is_sampled()
        scope.trace_id, scope.span_id, scope.trace_id_hex = trace_id, new_span_id(), format(trace_id, "032x")
        if parent is not None:
            scope.parent_id = parent.span_id
        if sampled:  # sampled out: no spans, but the trace id goes to the logs
            scope.traced, scope.name, scope.start_ns = True, name, time.time_ns()
            scope.attributes = {
                "http.request.method": method,
                "http.route": route,
                "url.path": path,
                "http.request.header.x-request-id": (request_id,),
            }
            if route in OPERATIONS:
                scope.attributes["gen_ai.operation.name"] = OPERATIONS[route]
            if agent := headers.get(b"user-agent"):
                scope.attributes["user_agent.original"] = agent.decode("latin-1")[:256]
        return scope

    def close_request(self, scope: RequestScope, status: int, complete: bool) -> None:
        """``scope.disconnected`` is set only when the client left before the response was complete: whatever
        was sent after that reached nobody, so the request is a 499 (as is a 499 the app answered itself),
        counted once in each metric, never as an error, and logged in one line."""
        abandoned = scope.disconnected or status == 499
        if abandoned:
            during = "response" if scope.body_received else "request_body"
            log.info("client_disconnected", endpoint=scope.endpoint, model=scope.model or None, during=during)
        reasons = sorted(scope.finish_reasons) or (["abort"] if abandoned and scope.model else [])
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
        if scope.traced:
            self._write_server_span(scope, status, abandoned, reasons)

    def _write_server_span(self, scope: RequestScope, status: int, abandoned: bool, reasons: list[str]) -> None:
        attributes = scope.attributes
        attributes["http.response.status_code"] = status
        if scope.model:
            attributes["gen_ai.response.model"] = scope.model
            attributes["gen_ai.usage.input_tokens"] = scope.input_tokens
            attributes["gen_ai.usage.output_tokens"] = scope.output_tokens
            attributes["gen_ai.response.finish_reasons"] = tuple(reasons)
        if scope.first_token is not None:
            attributes["gen_ai.response.time_to_first_chunk"] = scope.first_token - scope.started
        if abandoned:
            attributes["hfserve.client_disconnected"] = True
        if scope.error_type is not None:
            attributes["error.type"] = scope.error_type
        failed = not abandoned and (status >= 500 or scope.error_status >= 500)
        self.write(
            SpanRecord(
                scope.trace_id,
                scope.span_id,
                scope.parent_id,
                scope.name,
                SERVER,
                scope.start_ns,
                time.time_ns(),
                attributes,
                status=ERROR if failed else UNSET,
                status_message=scope.error_type if failed else None,
                remote_parent=bool(scope.parent_id),
            )
        )

    @staticmethod
    def enter(scope: RequestScope) -> Token[RequestScope | None]:
        return _current.set(scope)

    @staticmethod
    def leave(token: Token[RequestScope | None]) -> None:
        _current.reset(token)


class RequestScope:
    """What is known about one HTTP request while it is served."""

    __slots__ = (
        "attributes",
        "body_received",
        "disconnected",
        "endpoint",
        "error_status",
        "error_type",
        "finish_reasons",
        "first_token",
        "input_tokens",
        "model",
        "name",
        "output_tokens",
        "parent_id",
        "span_id",
        "start_ns",
        "started",
        "telemetry",
        "trace_id",
        "trace_id_hex",
        "traced",
    )

    def __init__(self, telemetry: Telemetry, endpoint: str) -> None:
        self.telemetry, self.endpoint = telemetry, endpoint
        self.started = time.perf_counter()
        self.traced = False  # tracing is on and this request is sampled: its spans are written
        self.trace_id = self.span_id = self.parent_id = self.start_ns = 0
        self.trace_id_hex: str | None = None  # for the logs, sampled or not
        self.name = ""
        self.attributes: dict[str, Any] = {}  # of the server span
        self.model = ""  # set once a loaded model serves it
        self.first_token: float | None = None  # perf_counter
        self.finish_reasons: set[str] = set()
        self.input_tokens = self.output_tokens = 0
        self.error_type: str | None = None
        self.error_status = 0
        self.disconnected = False
        self.body_received = False  # the request's whole body has arrived

    def child(self, name: str, start: int, end: int, attributes: dict[str, Any]) -> None:
        """Write a finished child span of this request (times in ``time.time_ns()``)."""
        end = max(start, end)
        record = SpanRecord(self.trace_id, new_span_id(), self.span_id, name, INTERNAL, start, end, attributes)
        self.telemetry.write(record)


def current_scope() -> RequestScope | None:
    return _current.get()


class _Phase:
    """A child span of the current request around one stage of its work; ``set_attribute`` adds to it."""

    __slots__ = ("_name", "_scope", "_start", "attributes")

    def __init__(self, scope: RequestScope, name: str, attributes: Mapping[str, Any] | None) -> None:
        self._scope, self._name, self.attributes = scope, name, dict(attributes or {})
        self._start = 0

    def __enter__(self) -> _Phase:
        self._start = time.time_ns()
        return self

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        scope, status, message = self._scope, UNSET, None
        if isinstance(exc, GeneratorExit | CancelledError):  # the client left, or the work was cancelled
            self.attributes["hfserve.cancelled"] = True
        elif exc is not None:
            self.attributes["error.type"] = getattr(exc, "code", None) or type(exc).__name__
            if isinstance(exc, Exception) and getattr(exc, "status", 500) >= 500:
                status, message = ERROR, str(exc)[:200]
        record = SpanRecord(
            scope.trace_id, new_span_id(), scope.span_id, self._name, INTERNAL, self._start, time.time_ns(),
            self.attributes, status=status, status_message=message,
        )  # fmt: skip
        scope.telemetry.write(record)


def phase(name: str, attributes: Mapping[str, Any] | None = None) -> contextlib.AbstractContextManager[_Phase | None]:
    """``with phase("validate") as span:`` a child span of the current request; ``span`` is None (and nothing
    is recorded) when tracing is off, the request is not sampled, or no request is current."""
    scope = _current.get()
    if scope is None or not scope.traced:
        return _NOTHING
    return _Phase(scope, name, attributes)


def media_span(stage: str, **attributes: Any) -> contextlib.AbstractContextManager[_Phase | None]:
    """For fetching and decoding media: ``with media_span("fetch", **{"url.scheme": "https"}):``, then
    ``media_span("decode", **{"hfserve.media.kind": "image"})``. Never put a URL's path or query in it."""
    return phase(f"media.{stage}", attributes)


def annotate(attributes: Mapping[str, Any]) -> None:
    """Attributes for the current request's span (when it is traced)."""
    scope = _current.get()
    if scope is not None and scope.traced:
        scope.attributes.update(attributes)


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
    if scope.traced:
        scope.attributes["gen_ai.response.id"] = response_id
    if scope.first_token is None:
        return {}
    return {"ttft_ms": round((scope.first_token - scope.started) * 1000, 1)}
