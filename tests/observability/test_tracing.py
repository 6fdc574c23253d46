"""Tracing is configured by the standard OTEL_* variables, and is entirely absent without them."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from app.observability.telemetry import Telemetry
from app.observability.tracing import traceparent_trace_id, tracer_provider_from_env

_OTEL = (
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _OTEL:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def exporters(provider) -> list[object]:
    processors = provider._active_span_processor._span_processors
    return [p.span_exporter for p in processors]


def test_no_variables_no_tracer_provider(env: pytest.MonkeyPatch) -> None:
    assert tracer_provider_from_env() is None
    telemetry = Telemetry.from_env()
    assert telemetry.tracer is None and not telemetry.tracing


@pytest.mark.parametrize("variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"])
def test_an_otlp_endpoint_turns_tracing_on(env: pytest.MonkeyPatch, variable: str) -> None:
    env.setenv(variable, "http://127.0.0.1:4318")
    provider = tracer_provider_from_env()
    assert provider is not None
    [exporter] = exporters(provider)
    assert isinstance(exporter, OTLPSpanExporter)
    assert exporter._endpoint.startswith("http://127.0.0.1:4318")
    assert provider.resource.attributes["service.name"] == "hfserve"
    provider.shutdown()


def test_the_service_name_comes_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    env.setenv("OTEL_SERVICE_NAME", "inference-eu")
    provider = tracer_provider_from_env()
    assert provider is not None and provider.resource.attributes["service.name"] == "inference-eu"
    provider.shutdown()


@pytest.mark.parametrize(("name", "value"), [("OTEL_SDK_DISABLED", "true"), ("OTEL_TRACES_EXPORTER", "none")])
def test_disabled_wins_over_an_endpoint(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    env.setenv(name, value)
    assert tracer_provider_from_env() is None


def test_a_named_exporter_needs_no_endpoint(env: pytest.MonkeyPatch) -> None:
    env.setenv("OTEL_TRACES_EXPORTER", "console")
    provider = tracer_provider_from_env()
    assert provider is not None and isinstance(exporters(provider)[0], ConsoleSpanExporter)
    provider.shutdown()


@pytest.mark.parametrize(
    ("header", "trace_id"),
    [
        (b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "0af7651916cd43dd8448eb211c80319c"),
        (b"00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-00", "0af7651916cd43dd8448eb211c80319c"),
        (b"00-00000000000000000000000000000000-b7ad6b7169203331-01", None),
        (b"garbage", None),
        (None, None),
    ],
)
def test_trace_ids_of_incoming_traceparent_headers(header: bytes | None, trace_id: str | None) -> None:
    assert traceparent_trace_id(header) == trace_id
