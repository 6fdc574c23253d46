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
import struct
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import structlog
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


# OTLP protobuf, written by hand. Building messages field by field from Python is most of what encoding
# costs with the protobuf library; a span here is a few fixed-width fields and a list of short pieces, so
# it is written directly (the message layouts are opentelemetry/proto/{trace,common}/v1/*.proto; a test
# compares the output with messages built by the library). Tags are (field number << 3) | wire type.


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag, the payload's length, the payload."""
    return tag + _varint(len(payload)) + payload


_DOUBLE = struct.Struct("<Bd")
_INT64 = (1 << 64) - 1  # negative int64s are written as their 64-bit two's complement


def _any_value(value: Any) -> bytes:
    """An ``AnyValue``: string (1), bool (2), int (3), double (4) or array (5) of them; anything else as its
    string. Every one is written, zero or not: they are members of a oneof."""
    cls = value.__class__
    if cls is str:
        return _field(b"\x0a", value.encode())
    if cls is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if cls is int:
        return b"\x18" + _varint(value & _INT64)
    if cls is float:
        return _DOUBLE.pack(0x21, value)
    if cls is list or cls is tuple:
        return _field(b"\x2a", b"".join([_field(b"\x0a", _any_value(v)) for v in value]))  # ArrayValue.values
    for kind in (str, bool, int, float):  # subclasses (enums): as the value they are
        if isinstance(value, kind):
            return _any_value(kind(value))
    return _any_value(str(value))


def _key_value(tag: bytes, key: str, value: Any) -> bytes:
    """A ``KeyValue`` (key 1, value 2) as field ``tag`` of its container."""
    return _field(tag, _field(b"\x0a", key.encode()) + _field(b"\x12", _any_value(value)))


_ATTRIBUTE = b"\x4a"  # Span.attributes (9); links (13) come written (spans.link_field)


class _Pieces:
    """A span's attributes as written, kept once made: most values repeat span after span. The cache is
    cleared whole when it grows past ``limit`` (one-off values such as request ids pass through it)."""

    def __init__(self, limit: int = 65536) -> None:
        self._pieces: dict[tuple[Any, ...], bytes] = {}
        self._limit = limit

    def attributes(self, attributes: Mapping[str, Any]) -> list[bytes]:
        get, attribute = self._pieces.get, self.attribute
        try:  # 1, 1.0 and True are equal but encode differently: the class is part of the key
            return [get((k, v.__class__, v)) or attribute(k, v) for k, v in attributes.items() if v is not None]
        except TypeError:  # a value that can't be a key: a list (list-valued attributes are best set as tuples)
            return [attribute(k, v) for k, v in attributes.items() if v is not None]

    def attribute(self, key: str, value: Any) -> bytes:
        cache_key = (key, value.__class__, value)
        try:
            piece = self._pieces.get(cache_key)
        except TypeError:  # unhashable (a list, or anything written as its string): not kept
            return _key_value(_ATTRIBUTE, key, value)
        if piece is None:
            if len(self._pieces) >= self._limit:
                self._pieces.clear()
            piece = self._pieces[cache_key] = _key_value(_ATTRIBUTE, key, value)
        return piece


_PIECES = _Pieces()

# the rest of a span, and where spans sit
_TRACE_ID, _SPAN_ID, _PARENT_ID, _NAME = b"\x0a\x10", b"\x12\x08", b"\x22\x08", b"\x2a"  # fields 1, 2, 4, 5
_KINDS = [bytes((0x30, kind + 1)) for kind in range(5)]  # 6; the SDK's SpanKind counts from 0, OTLP's from 1
_TIMES = struct.Struct("<BQBQ")  # start (7) and end (8), both fixed64
_NO_STATUS = b"\x7a\x00"  # an empty status (15): unset
_FLAGS = [b"\x85\x01" + struct.pack("<I", 0x100 | 0x200 * remote | 0x01) for remote in (0, 1)]
# flags (16, fixed32): has-is-remote, is-remote (the parent came in a traceparent header), sampled
_SCOPE = _field(b"\x0a", _field(b"\x0a", b"hfserve"))  # ScopeSpans.scope (1): InstrumentationScope{name (1)}
_SPAN, _SCOPE_SPANS, _RESOURCE, _RESOURCE_SPANS = b"\x12", b"\x12", b"\x0a", b"\x0a"


def _status(code: int, message: str | None) -> bytes:
    """``Status`` (15): message (2), code (3)."""
    body = _field(b"\x12", message.encode()) if message else b""
    return _field(b"\x7a", body + bytes((0x18, code)))


class _Names(dict[str, bytes]):
    """A span name's field, made once per name (a handful of them: stage names and routes)."""

    def __missing__(self, name: str) -> bytes:
        piece = _field(_NAME, name.encode())
        if len(self) < 4096:
            self[name] = piece
        return piece


_NAMES = _Names()


def encode(records: Iterable[tuple[Any, ...]], resource_attributes: Mapping[str, Any]) -> bytes:
    """An ``ExportTraceServiceRequest`` holding ``records`` (``SpanRecord``s, or the plain tuples they
    travel as) under one resource and scope."""
    attributes_of, names, times = _PIECES.attributes, _NAMES, _TIMES.pack
    spans: list[bytes] = []
    for trace_id, span_id, parent_id, name, kind, start, end, attributes, links, status, message, remote in records:
        parts = [_TRACE_ID, trace_id.to_bytes(16, "big"), _SPAN_ID, span_id.to_bytes(8, "big")]
        if parent_id:
            parts += (_PARENT_ID, parent_id.to_bytes(8, "big"))
        parts += (names[name], _KINDS[kind], times(0x39, start, 0x41, end))
        parts += attributes_of(attributes)
        parts += (links, _status(status, message) if status or message else _NO_STATUS, _FLAGS[remote])
        span = b"".join(parts)
        spans += (_SPAN, _varint(len(span)), span)
    resource = b"".join([_key_value(b"\x0a", k, v) for k, v in resource_attributes.items()])  # Resource.attributes
    body = _field(_RESOURCE, resource) + _field(_SCOPE_SPANS, _SCOPE + b"".join(spans))
    return _field(_RESOURCE_SPANS, body)  # ExportTraceServiceRequest.resource_spans (1): ResourceSpans


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
                body = encode(chunk, attributes)
            except Exception:  # a record this encoder can't write: lose its batch, not the export process
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
