"""The tracer provider, built from the standard OpenTelemetry environment variables, or none at all.

Tracing is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, or when
``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``: OTLP over http/protobuf; ``console``: stdout). It is
off when ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``, and otherwise: then there is no tracer
provider at all and every tracing path is skipped. The SDK reads the rest itself (``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_*_HEADERS``...).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

import structlog
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = structlog.get_logger(__name__)

DEFAULT_SERVICE_NAME = "hfserve"
PROPAGATOR = TraceContextTextMapPropagator()
_TRACEPARENT = re.compile(rb"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_HTTP_PROTOCOLS = {"http/protobuf", ""}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def trace_exporters() -> list[str]:
    """The exporters the environment asks for (empty: tracing off)."""
    if _flag("OTEL_SDK_DISABLED"):
        return []
    named = [e.strip().lower() for e in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()]
    if not named:
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        named = ["otlp"] if endpoint else []
    return [e for e in named if e != "none"]


def _exporter(name: str) -> SpanExporter | None:
    if name == "otlp":
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", ""
        )
        if protocol.strip().lower() not in _HTTP_PROTOCOLS:
            log.warning("otlp_protocol_unsupported", protocol=protocol, using="http/protobuf")
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if name == "console":
        return ConsoleSpanExporter()
    log.warning("trace_exporter_unknown", exporter=name, known=["otlp", "console", "none"])
    return None


def tracer_provider_from_env() -> TracerProvider | None:
    """A provider exporting in batches to what the environment names, or None when tracing is off."""
    exporters = [e for e in map(_exporter, trace_exporters()) if e is not None]
    if not exporters:
        return None
    named = "OTEL_SERVICE_NAME" in os.environ or "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    resource = Resource.create({} if named else {"service.name": DEFAULT_SERVICE_NAME})
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class HeaderGetter(Getter[Mapping[bytes, bytes]]):
    """Reads W3C trace context from ASGI headers (lower-case byte names)."""

    def get(self, carrier: Mapping[bytes, bytes], key: str) -> list[str] | None:
        value = carrier.get(key.encode("latin-1"))
        return None if value is None else [value.decode("latin-1")]

    def keys(self, carrier: Mapping[bytes, bytes]) -> Iterable[str]:
        return [key.decode("latin-1") for key in carrier]


HEADERS = HeaderGetter()


def traceparent_trace_id(header: bytes | None) -> str | None:
    """The trace id of a W3C ``traceparent`` header, for log lines when tracing is off."""
    if not header:
        return None
    match = _TRACEPARENT.match(header.strip().lower())
    if match is None or match.group(1) == b"0" * 32:
        return None
    return match.group(1).decode()
