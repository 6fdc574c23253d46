"""Tracing configuration from the standard OpenTelemetry environment variables, and W3C trace context.

Tracing is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, or when
``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``: OTLP over http/protobuf, from the export process;
``console``: the SDK's console exporter, for a quick look). It is off when ``OTEL_SDK_DISABLED=true`` or
``OTEL_TRACES_EXPORTER=none``, and otherwise: then nothing about traces is built and every tracing path is
skipped. ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` choose the SDK sampler (default: parent-based,
always on). The export process reads the rest (app/observability/export.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

import structlog
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanContext, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = structlog.get_logger(__name__)

PROPAGATOR = TraceContextTextMapPropagator()
KNOWN_EXPORTERS = ("otlp", "console")
_TRACEPARENT = re.compile(rb"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_HTTP_PROTOCOLS = {"http/protobuf", ""}
DEFAULT_SAMPLER = ParentBased(ALWAYS_ON)


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def trace_exporters() -> list[str]:
    """The exporters the environment asks for, among those we have (empty: tracing off)."""
    if _flag("OTEL_SDK_DISABLED"):
        return []
    named = [e.strip().lower() for e in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()]
    if not named:
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        named = ["otlp"] if endpoint else []
    for name in named:
        if name not in (*KNOWN_EXPORTERS, "none"):
            log.warning("trace_exporter_unknown", exporter=name, known=[*KNOWN_EXPORTERS, "none"])
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    if "otlp" in named and protocol.strip().lower() not in _HTTP_PROTOCOLS:
        log.warning("otlp_protocol_unsupported", protocol=protocol, using="http/protobuf")
    return [name for name in named if name in KNOWN_EXPORTERS]


def sampler_from_env() -> Sampler:
    name = os.environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    try:
        ratio = float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))
    except ValueError:
        ratio = 1.0
    samplers: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
        "parentbased_always_on": DEFAULT_SAMPLER,
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": ParentBased(TraceIdRatioBased(ratio)),
    }
    if name not in samplers:
        log.warning("trace_sampler_unknown", sampler=name, using="parentbased_always_on")
    return samplers.get(name, samplers["parentbased_always_on"])


class HeaderGetter(Getter[Mapping[bytes, bytes]]):
    """Reads W3C trace context from ASGI headers (lower-case byte names)."""

    def get(self, carrier: Mapping[bytes, bytes], key: str) -> list[str] | None:
        value = carrier.get(key.encode("latin-1"))
        return None if value is None else [value.decode("latin-1")]

    def keys(self, carrier: Mapping[bytes, bytes]) -> Iterable[str]:
        return [key.decode("latin-1") for key in carrier]


HEADERS = HeaderGetter()


def incoming_context(headers: Mapping[bytes, bytes]) -> tuple[Context | None, SpanContext | None]:
    """The caller's trace context from ``traceparent``/``tracestate``, when valid."""
    if b"traceparent" not in headers:
        return None, None
    context = PROPAGATOR.extract(headers, getter=HEADERS)
    parent = get_current_span(context).get_span_context()
    return (context, parent) if parent.is_valid else (None, None)


def traceparent_trace_id(header: bytes | None) -> str | None:
    """The trace id of a W3C ``traceparent`` header, for log lines when tracing is off."""
    if not header:
        return None
    match = _TRACEPARENT.match(header.strip().lower())
    if match is None or match.group(1) == b"0" * 32:
        return None
    return match.group(1).decode()
