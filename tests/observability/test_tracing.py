"""Tracing is configured by the standard OTEL_* variables, and is entirely absent without them."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased

from app.observability.export import resource, traces_endpoint
from app.observability.telemetry import Telemetry
from app.observability.tracing import incoming_context, sampler_from_env, trace_exporters, traceparent_trace_id

_OTEL = (
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _OTEL:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_no_variables_no_tracing(env: pytest.MonkeyPatch) -> None:
    assert trace_exporters() == []
    telemetry = Telemetry.from_env()
    assert not telemetry.tracing and telemetry.writer is None
    telemetry.start()  # nothing to start
    assert telemetry.writer is None


@pytest.mark.parametrize(
    ("variable", "value", "endpoint"),
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/", "http://collector:4318/v1/traces"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9999/custom", "http://127.0.0.1:9999/custom"),
    ],
)
def test_an_otlp_endpoint_turns_tracing_on(env: pytest.MonkeyPatch, variable: str, value: str, endpoint: str) -> None:
    env.setenv(variable, value)
    assert trace_exporters() == ["otlp"]
    assert Telemetry.from_env().tracing
    assert traces_endpoint() == endpoint


def test_the_service_name(env: pytest.MonkeyPatch) -> None:
    assert resource().attributes["service.name"] == "hfserve"
    env.setenv("OTEL_SERVICE_NAME", "inference-eu")
    assert resource().attributes["service.name"] == "inference-eu"
    env.delenv("OTEL_SERVICE_NAME")
    env.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes,deployment.environment=prod")
    attributes = resource().attributes
    assert (attributes["service.name"], attributes["deployment.environment"]) == ("from-attributes", "prod")


@pytest.mark.parametrize(("name", "value"), [("OTEL_SDK_DISABLED", "true"), ("OTEL_TRACES_EXPORTER", "none")])
def test_disabled_wins_over_an_endpoint(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    env.setenv(name, value)
    assert trace_exporters() == [] and not Telemetry.from_env().tracing


def test_named_exporters(env: pytest.MonkeyPatch) -> None:
    env.setenv("OTEL_TRACES_EXPORTER", "console,zipkin")  # zipkin is not shipped: warned about, left out
    assert trace_exporters() == ["console"]


def test_the_sampler_comes_from_the_environment(env: pytest.MonkeyPatch) -> None:
    assert isinstance(sampler_from_env(), ParentBased)
    env.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    env.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    sampler = sampler_from_env()
    assert isinstance(sampler, TraceIdRatioBased) and sampler.rate == 0.25
    env.setenv("OTEL_TRACES_SAMPLER", "always_off")
    assert sampler_from_env() is ALWAYS_OFF


def test_incoming_trace_context() -> None:
    context, parent = incoming_context({b"traceparent": b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    assert context is not None and parent is not None
    assert (parent.trace_id, parent.span_id) == (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331)
    assert parent.is_remote
    assert incoming_context({b"traceparent": b"nonsense"}) == (None, None)
    assert incoming_context({}) == (None, None)


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


@pytest.mark.parametrize(
    ("flags", "sampler", "traced"),
    [("01", None, True), ("00", None, False), ("01", ALWAYS_OFF, False), ("00", ALWAYS_ON, True)],
)
def test_a_request_is_traced_as_its_caller_and_the_sampler_say(flags: str, sampler: Any, traced: bool) -> None:
    """The default sampler follows the caller's sampled flag; any other sampler decides by itself. Either way
    the request keeps the caller's trace id (for its log lines)."""
    telemetry = Telemetry(span_exporter=InMemorySpanExporter(), sampler=sampler)
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    headers = {b"traceparent": f"00-{trace_id}-b7ad6b7169203331-{flags}".encode()}
    scope = telemetry.open_request("POST", "/v1/chat/completions", "/v1/chat/completions", headers, "id-1")
    assert scope.traced is traced and scope.trace_id_hex == trace_id
    root = telemetry.open_request("POST", "/v1/chat/completions", "/v1/chat/completions", {}, "id-2")
    assert root.traced is (sampler is not ALWAYS_OFF)  # no caller: a new trace, sampled unless told not to
