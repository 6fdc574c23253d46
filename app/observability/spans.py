"""Spans as plain records, and where they go.

Building an SDK span and encoding it costs tens of microseconds, and a link each several more: at one span
per stage of every request and one per engine step, the HTTP process would spend a third more CPU per
token (measured in bench/README.md). So the HTTP process keeps no SDK span objects: it writes each finished
span as a ``SpanRecord`` tuple (ids from the SDK's id generator, sampling decided by the SDK's sampler), and
a writer takes the records away:

- ``ExportProcessWriter`` (serving): a thread hands batches to the export process (app/observability/
  export.py), which encodes them to OTLP protobuf and posts them to the collector;
- ``SpanExporterWriter`` (tests, tools): turns records into SDK ``ReadableSpan``s for any SDK exporter,
  e.g. the in-memory one.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from typing import Any, NamedTuple

import structlog
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

log = structlog.get_logger(__name__)

INTERNAL, SERVER = SpanKind.INTERNAL.value, SpanKind.SERVER.value
UNSET, ERROR = StatusCode.UNSET.value, StatusCode.ERROR.value
SCOPE = InstrumentationScope("hfserve")
_IDS = RandomIdGenerator()
new_trace_id = _IDS.generate_trace_id
new_span_id = _IDS.generate_span_id
LinkedSpan = tuple[int, int]  # (trace id, span id)


class SpanRecord(NamedTuple):
    trace_id: int
    span_id: int
    parent_id: int  # 0: a root span
    name: str
    kind: int  # opentelemetry.trace.SpanKind value
    start: int  # time.time_ns()
    end: int
    attributes: dict[str, Any]
    links: tuple[LinkedSpan, ...] = ()
    status: int = UNSET  # StatusCode value
    status_message: str | None = None
    remote_parent: bool = False  # the parent came in a traceparent header


_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def to_readable(record: SpanRecord, resource: Resource) -> ReadableSpan:
    """The SDK's form of a record, for SDK exporters."""
    context = SpanContext(record.trace_id, record.span_id, False, _SAMPLED)
    parent = None
    if record.parent_id:
        parent = SpanContext(record.trace_id, record.parent_id, record.remote_parent, _SAMPLED)
    links = [Link(SpanContext(trace_id, span_id, False, _SAMPLED)) for trace_id, span_id in record.links]
    return ReadableSpan(
        name=record.name,
        context=context,
        parent=parent,
        resource=resource,
        attributes=record.attributes,
        links=links,
        kind=SpanKind(record.kind),
        status=Status(StatusCode(record.status), record.status_message),
        start_time=record.start,
        end_time=record.end,
        instrumentation_scope=SCOPE,
    )


class SpanWriter:
    """Where finished span records go. ``write`` runs on the event loop and must stay cheap."""

    def write(self, record: SpanRecord) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Deliver what is pending, then stop."""


class SpanExporterWriter(SpanWriter):
    """Records to an SDK exporter, synchronously (for tests and tools, not for serving)."""

    def __init__(self, exporter: SpanExporter, resource: Resource | None = None) -> None:
        self._exporter = exporter
        self._resource = resource or Resource.create({"service.name": "hfserve"})

    def write(self, record: SpanRecord) -> None:
        self._exporter.export([to_readable(record, self._resource)])

    def close(self) -> None:
        self._exporter.shutdown()


class ExportProcessWriter(SpanWriter):
    """Records to the export process: the loop appends to a deque; a thread sends batches down the pipe.

    The loop never waits on the pipe. If the export process falls behind by more than ``max_pending``
    records, new ones are dropped (telemetry must never hold up serving).
    """

    def __init__(self, conn: Any, *, interval: float = 0.2, batch: int = 512, max_pending: int = 65536) -> None:
        self._conn = conn
        self._pending: collections.deque[SpanRecord] = collections.deque()
        self._interval, self._batch, self._max_pending = interval, batch, max_pending
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="span-writer", daemon=True)
        self._thread.start()

    def write(self, record: SpanRecord) -> None:
        if len(self._pending) >= self._max_pending:
            return
        self._pending.append(record)
        if len(self._pending) == self._batch:  # once, as it fills up: the thread then takes all there is
            self._wake.set()

    def _run(self) -> None:
        pending = self._pending
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            while pending:
                # as plain tuples: a named tuple pickles through a Python call per record
                batch = [tuple(pending.popleft()) for _ in range(min(len(pending), self._batch))]
                try:
                    self._conn.send(batch)
                except (OSError, ValueError):  # the export process is gone: keep serving without traces
                    log.warning("span_export_process_gone", dropped=len(batch) + len(pending))
                    pending.clear()
                    return
            if self._stopping:
                return

    def close(self, timeout: float = 5.0) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        with contextlib.suppress(OSError, ValueError):
            self._conn.send(None)  # the export process posts what it holds and exits
