"""The span export process: encodes the HTTP process's span records to OTLP protobuf and posts them.

Encoding is most of what a span costs, so it runs in a process of its own, away from the event loop's GIL.
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
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.util.re import parse_env_headers

from app.observability.spans import SpanRecord

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


def _value(value: Any) -> AnyValue:
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[_value(v) for v in value]))
    return AnyValue(string_value=str(value))


def _attributes(attributes: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_value(value)) for key, value in attributes.items() if value is not None]


class _Fragments:
    """Serialized pieces of a ``Span`` (one attribute, one link), kept once made.

    Building protobuf messages field by field from Python is most of what encoding costs, and most pieces
    repeat: the same attribute values span after span, and every request's link in each of the engine steps
    it took part in. A span is its fixed fields plus these pieces merged in, all of it done by protobuf's C
    code; concatenated serialized fields parse as the message that holds them all. The cache is cleared
    whole when it grows past ``limit`` (one-off values such as request ids pass through it)."""

    def __init__(self, limit: int = 65536) -> None:
        self._pieces: dict[tuple[Any, ...], bytes] = {}
        self._limit = limit

    def attribute(self, key: str, value: Any) -> bytes:
        if isinstance(value, list | tuple):  # unhashable, and rarely repeated
            return _attribute_piece(key, value)
        cache_key = (key, value.__class__, value)  # 1, 1.0 and True are equal but encode differently
        piece = self._pieces.get(cache_key)
        return piece if piece is not None else self._keep(cache_key, _attribute_piece(key, value))

    def link(self, trace_id: int, span_id: int) -> bytes:
        cache_key = (trace_id, span_id)
        piece = self._pieces.get(cache_key)
        if piece is None:
            link = Span.Link(trace_id=trace_id.to_bytes(16, "big"), span_id=span_id.to_bytes(8, "big"))
            piece = self._keep(cache_key, Span(links=[link]).SerializeToString())
        return piece

    def _keep(self, key: tuple[Any, ...], piece: bytes) -> bytes:
        if len(self._pieces) >= self._limit:
            self._pieces.clear()
        self._pieces[key] = piece
        return piece


def _attribute_piece(key: str, value: Any) -> bytes:
    return Span(attributes=[KeyValue(key=key, value=_value(value))]).SerializeToString()


_FRAGMENTS = _Fragments()


def encode(records: Iterable[SpanRecord], resource_attributes: Mapping[str, Any]) -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(_attributes(resource_attributes))
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "hfserve"
    add, attribute, link = scope.spans.add, _FRAGMENTS.attribute, _FRAGMENTS.link
    for r in records:
        span = add(
            trace_id=r.trace_id.to_bytes(16, "big"),
            span_id=r.span_id.to_bytes(8, "big"),
            parent_span_id=r.parent_id.to_bytes(8, "big") if r.parent_id else b"",
            name=r.name,
            kind=r.kind + 1,  # the SDK's SpanKind counts from 0, OTLP's from 1 (0 is unspecified)
            start_time_unix_nano=r.start,
            end_time_unix_nano=r.end,
            flags=0x100 | 0x200 * r.remote_parent | 0x01,  # has-is-remote, is-remote, sampled
        )
        pieces = [attribute(key, value) for key, value in r.attributes.items() if value is not None]
        pieces += [link(trace_id, span_id) for trace_id, span_id in r.links]
        span.MergeFromString(b"".join(pieces))
        span.status.SetInParent()
        if r.status:
            span.status.code = r.status  # type: ignore[assignment]
        if r.status_message:
            span.status.message = r.status_message
    return request.SerializeToString()


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
    attributes = dict(resource().attributes)
    delay = float(os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "5000")) / 1000
    batch_size = int(os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512"))
    held: list[SpanRecord] = []
    due = time.monotonic() + delay
    running = True
    while running:
        try:
            if conn.poll(max(0.0, due - time.monotonic())):
                records = conn.recv()
                if records is None:
                    running = False
                else:
                    held.extend(map(SpanRecord._make, records))
        except (EOFError, OSError):  # the HTTP process is gone
            running = False
        while held and (len(held) >= batch_size or not running or time.monotonic() >= due):
            chunk, held = held[:batch_size], held[batch_size:]
            poster.post(encode(chunk, attributes))
        if time.monotonic() >= due:
            due = time.monotonic() + delay


def start_export_process(log_setup: Callable[[], None] | None = None) -> tuple[Any, Any]:
    """The export process and the pipe end to send record batches to."""
    receiver, sender = _SPAWN.Pipe(duplex=False)
    process = _SPAWN.Process(target=serve, args=(receiver, log_setup), name="span-export", daemon=True)
    process.start()
    receiver.close()
    return process, sender
