"""Per-app Prometheus registries: the histogram made for the event loop, the engine gauges, the exposition."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.observability.metrics import LoopHistogram, RequestMetrics, new_registry
from app.observability.telemetry import Telemetry


def families(text: str) -> dict[str, list]:
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_loop_histogram_exposes_cumulative_buckets_count_and_sum() -> None:
    registry = new_registry()
    histogram = LoopHistogram("x_seconds", "x", ("model",), (0.1, 1.0))
    registry.register(histogram)  # type: ignore[arg-type]
    series = histogram.labels("m")
    series.observe(0.05)
    series.observe(0.1)  # a bucket's bound belongs to it (le)
    series.observe(0.5, count=3)  # three tokens that arrived together
    series.observe(7.0)
    samples = families(_text(registry))["x_seconds"]
    buckets = {s.labels["le"]: s.value for s in samples if s.name == "x_seconds_bucket"}
    assert buckets == {"0.1": 2, "1.0": 5, "+Inf": 6}
    values = {s.name: s.value for s in samples if s.name != "x_seconds_bucket"}
    assert values == {"x_seconds_count": 6, "x_seconds_sum": 0.05 + 0.1 + 1.5 + 7.0}
    assert all(s.labels["model"] == "m" for s in samples)


def _text(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def test_engine_gauges_are_read_at_scrape_time() -> None:
    registry = new_registry()
    metrics = RequestMetrics(registry)
    load = {"a@main": {"running": 3, "waiting": 1}}
    metrics.watch_engines(lambda: load)
    scraped = families(_text(registry))
    assert [(s.labels, s.value) for s in scraped["hfserve_requests_waiting"]] == [({"model": "a@main"}, 1)]
    assert [(s.labels, s.value) for s in scraped["hfserve_requests_running"]] == [({"model": "a@main"}, 3)]
    assert [(s.labels, s.value) for s in scraped["hfserve_model_loaded"]] == [({"model": "a@main"}, 1)]
    load.clear()  # unloaded: its series go away
    assert families(_text(registry))["hfserve_requests_waiting"] == []


def test_each_app_has_its_own_registry_with_the_process_metrics() -> None:
    first, second = Telemetry(), Telemetry()  # would raise "Duplicated timeseries" on one shared registry
    first.metrics.generation_tokens.labels("m").inc(5)  # type: ignore[union-attr]
    text = first.exposition()[0].decode()
    assert "process_cpu_seconds_total" in text or "python_info" in text
    assert families(text)["hfserve_generation_tokens"][0].value == 5
    assert families(second.exposition()[0].decode())["hfserve_generation_tokens"] == []


def test_without_request_metrics_only_the_process_ones_remain() -> None:
    text = Telemetry(metrics=False).exposition()[0].decode()
    assert "python_info" in text
    assert "hfserve_" not in text
