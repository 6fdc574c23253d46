"""The span export process: encodes the HTTP process's span records to OTLP protobuf and posts them.

Encoding is most of what a span costs, so it runs in a process of its own, away from the event loop's GIL:
``SpanEncoder`` builds the OTLP messages of ``opentelemetry-proto`` and protobuf serializes them.

It reads the standard variables: ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (used as is) or
``OTEL_EXPORTER_OTLP_ENDPOINT`` (plus ``/v1/traces``), ``OTEL_EXPORTER_OTLP_[TRACES_]HEADERS``,
``..._COMPRESSION`` (``gzip``), ``..._TIMEOUT`` (ms), ``..._CERTIFICATE``; ``OTEL_BSP_SCHEDULE_DELAY`` (ms)
and ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE``; the resource from ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` (through the SDK's ``Resource``). A failed post is logged and dropped.
"""

from __future__ import annotations

import gzip
import http.client
import multiprocessing
import os
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import structlog
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.sdk.resources import Resource
from opentelemetry.util.re import parse_env_headers

log = structlog.get_logger(__name__)
_SPAWN = multiprocessing.get_context("spawn")
DEFAULT_SERVICE_NAME = "hfserve"


def _env(name: str, default: str = "") -> str:
    """``OTEL_EXPORTER_OTLP_TRACES_<name>``, else ``OTEL_EXPORTER_OTLP_<name>``."""
    return os.environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or os.environ.get(f"OTEL_EXPORTER_OTLP_{name}", default)


def traces_endpoint() -> str:
    if endpoint := os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return endpoint
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")
    return base.rstrip("/") + "/v1/traces"


def resource() -> Resource:
    named = "OTEL_SERVICE_NAME" in os.environ or "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    return Resource.create({} if named else {"service.name": DEFAULT_SERVICE_NAME})


class SpanEncoder:
    """Span records to an OTLP ``ExportTraceServiceRequest``, built from the protobuf messages of
    ``opentelemetry-proto`` and serialized by protobuf, under one resource and the ``hfserve`` scope.

    Most attribute values repeat span after span, and a request's link recurs in every engine step it took
    part in, so each ``KeyValue`` and ``Span.Link`` message is made once and copied into the spans that use
    it (most of what a span costs here is making messages from Python).
    """

    def __init__(self, resource_attributes: Mapping[str, Any], limit: int = 65536) -> None:
        self._resource = [_key_value(key, value) for key, value in resource_attributes.items()]
        self._attributes = _MessageCache(_attribute, limit)
        self._links = _MessageCache(_link, limit)

    def encode(self, records: Iterable[tuple[Any, ...]]) -> bytes:
        """``records``: ``SpanRecord``s, or the plain tuples they travel as."""
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(self._resource)
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = "hfserve"
        add_span, attribute, link = scope_spans.spans.add, self._attributes.__getitem__, self._links.__getitem__
        for trace_id, span_id, parent_id, name, kind, start, end, attributes, links, status, message, remote in records:
            try:  # 1, 1.0 and True are equal but encode differently: the class is part of the key
                kept = [attribute((k, v.__class__, v)) for k, v in attributes.items() if v is not None]
            except TypeError:  # a value that can't be a key (a list; list-valued attributes are best tuples)
                kept = [_key_value(k, v) for k, v in attributes.items() if v is not None]
            add_span(
                trace_id=trace_id.to_bytes(16, "big"),
                span_id=span_id.to_bytes(8, "big"),
                parent_span_id=parent_id.to_bytes(8, "big") if parent_id else b"",
                name=name,
                kind=kind + 1,  # the SDK's SpanKind counts from 0, OTLP's from 1
                start_time_unix_nano=start,
                end_time_unix_nano=end,
                attributes=kept,
                links=list(map(link, links)),
                status=Status(code=status, message=message) if status or message else _NO_STATUS,
                flags=_FLAGS[remote],
            )
        return request.SerializeToString()


class _MessageCache(dict[tuple[Any, ...], Any]):
    """Messages made once per key. Cleared whole when it grows past ``limit`` (one-off values such as
    request ids pass through it)."""

    def __init__(self, make: Callable[[tuple[Any, ...]], Any], limit: int) -> None:
        super().__init__()
        self._make, self._limit = make, limit

    def __missing__(self, key: tuple[Any, ...]) -> Any:
        if len(self) >= self._limit:
            self.clear()
        message = self[key] = self._make(key)
        return message


def _attribute(key: tuple[str, type, Any]) -> KeyValue:
    return _key_value(key[0], key[2])


def _link(key: tuple[int, int]) -> Span.Link:
    trace_id, span_id = key
    return Span.Link(trace_id=trace_id.to_bytes(16, "big"), span_id=span_id.to_bytes(8, "big"))


_NO_STATUS = Status()  # unset
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FLAGS = [0x100 | 0x200 * remote | 0x01 for remote in (0, 1)]
# has-is-remote, is-remote (the parent came in a traceparent header), sampled


def _any_value(value: Any) -> AnyValue:
    """A string, bool, int, float or a sequence of them; anything else as its string."""
    cls = value.__class__
    if cls is str:
        return AnyValue(string_value=value)
    if cls is bool:
        return AnyValue(bool_value=value)
    if cls is int:  # an int64; a bigger one as its string
        return AnyValue(int_value=value) if _INT64_MIN <= value <= _INT64_MAX else AnyValue(string_value=str(value))
    if cls is float:
        return AnyValue(double_value=value)
    if cls is list or cls is tuple:
        return AnyValue(array_value=ArrayValue(values=[_any_value(v) for v in value]))
    for kind in (str, bool, int, float):  # subclasses (enums): as the value they are
        if isinstance(value, kind):
            return _any_value(kind(value))
    return AnyValue(string_value=str(value))


def _key_value(key: str, value: Any) -> KeyValue:
    return KeyValue(key=key, value=_any_value(value))


class OtlpHttpPoster:
    """POSTs encoded batches to the collector over one kept-alive connection."""

    def __init__(self, endpoint: str) -> None:
        url = urlsplit(endpoint)
        self._https = url.scheme == "https"
        self._host, self._port = url.hostname or "localhost", url.port or (443 if self._https else 80)
        self._path = (url.path or "/v1/traces") + (f"?{url.query}" if url.query else "")
        self._headers = {"Content-Type": "application/x-protobuf", **parse_env_headers(_env("HEADERS"), liberal=True)}
        self._gzip = _env("COMPRESSION").strip().lower() == "gzip"
        if self._gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._timeout = float(_env("TIMEOUT", "10000")) / 1000
        self._context = ssl.create_default_context(cafile=_env("CERTIFICATE") or None) if self._https else None
        self._conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> None:
        data = gzip.compress(body) if self._gzip else body
        for attempt in (1, 2):  # once more on a fresh connection if the kept-alive one was closed
            try:
                conn = self._conn or self._connect()
                conn.request("POST", self._path, body=data, headers=self._headers)
                response = conn.getresponse()
                response.read()
                if response.status >= 300:
                    log.warning("span_export_rejected", status=response.status, endpoint=self._host)
                return
            except (OSError, http.client.HTTPException) as exc:
                self._close()
                if attempt == 2:
                    log.warning("span_export_failed", error=str(exc), endpoint=f"{self._host}:{self._port}")

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            self._conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=self._context
            )
        else:
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def serve(conn: Any, log_setup: Callable[[], None] | None = None) -> None:
    """Entry point of the export process (``multiprocessing`` spawn target)."""
    if log_setup is not None:
        log_setup()
    poster = OtlpHttpPoster(traces_endpoint())
    encoder = SpanEncoder(resource().attributes)
    delay = float(os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "5000")) / 1000
    batch_size = int(os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512"))
    held: list[tuple[Any, ...]] = []
    due = time.monotonic() + delay
    running = True
    while running:
        try:
            if conn.poll(max(0.0, due - time.monotonic())):
                records = conn.recv()
                if records is None:
                    running = False
                else:
                    held.extend(records)
        except (EOFError, OSError):  # the HTTP process is gone
            running = False
        while held and (len(held) >= batch_size or not running or time.monotonic() >= due):
            chunk, held = held[:batch_size], held[batch_size:]
            try:
                body = encoder.encode(chunk)
            except Exception:  # a record that can't be encoded: lose its batch, not the export process
                log.exception("span_encode_failed", spans=len(chunk))
                continue
            poster.post(body)
        if time.monotonic() >= due:
            due = time.monotonic() + delay


def start_export_process(log_setup: Callable[[], None] | None = None) -> tuple[Any, Any]:
    """The export process and the pipe end to send record batches to."""
    receiver, sender = _SPAWN.Pipe(duplex=False)
    process = _SPAWN.Process(target=serve, args=(receiver, log_setup), name="span-export", daemon=True)
    process.start()
    receiver.close()
    return process, sender
