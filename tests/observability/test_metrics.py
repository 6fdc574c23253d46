"""Per-app Prometheus registries: the request histograms, the engine gauges, the exposition."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.observability.metrics import TOKEN_GAP_BUCKETS, RequestMetrics, new_registry
from app.observability.telemetry import Telemetry


def families(text: str) -> dict[str, list]:
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_histograms_expose_their_buckets_count_and_sum() -> None:
    registry = new_registry()
    metrics = RequestMetrics(registry)
    series = metrics.itl.labels("m")
    observed = (0.0005, 0.001, 0.012, 0.012, 0.012, 7.0)  # a bucket's bound belongs to it (le)
    for value in observed:
        series.observe(value)
    samples = families(_text(registry))["hfserve_inter_token_latency_seconds"]
    buckets = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
    assert list(buckets) == [*(repr(float(b)) for b in TOKEN_GAP_BUCKETS), "+Inf"]
    assert (buckets["0.001"], buckets["0.01"], buckets["0.015"], buckets["2.5"], buckets["+Inf"]) == (2, 2, 5, 5, 6)
    values = {s.name: s.value for s in samples if s.name.endswith(("_count", "_sum"))}
    assert values == {
        "hfserve_inter_token_latency_seconds_count": 6,
        "hfserve_inter_token_latency_seconds_sum": sum(observed),
    }
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


def test_router_gauges_carry_vllm_names_and_the_cache_configuration() -> None:
    """The Gateway API Inference Extension's endpoint picker reads these names by default."""
    registry = new_registry()
    RequestMetrics(registry).watch_engines(
        lambda: {"a@main": {"running": 3, "waiting": 1, "kv_usage": 0.25, "kv_capacity": 4096}}
    )
    scraped = families(_text(registry))
    label = {"model_name": "a@main"}
    assert [(s.labels, s.value) for s in scraped["vllm:num_requests_waiting"]] == [(label, 1)]
    assert [(s.labels, s.value) for s in scraped["vllm:num_requests_running"]] == [(label, 3)]
    assert [(s.labels, s.value) for s in scraped["vllm:kv_cache_usage_perc"]] == [(label, 0.25)]
    assert [(s.labels, s.value) for s in scraped["hfserve_kv_cache_usage"]] == [({"model": "a@main"}, 0.25)]
    (config,) = scraped["vllm:cache_config_info"]
    assert config.value == 1
    assert config.labels == {**label, "block_size": "1", "num_gpu_blocks": "4096", "enable_prefix_caching": "False"}


def test_a_paged_cache_reports_its_blocks_prefix_cache_and_preemptions() -> None:
    registry = new_registry()
    counts = {"kv_capacity": 4096, "kv_blocks_total": 256, "prefix_caching": True, "preemptions": 2}
    RequestMetrics(registry).watch_engines(
        lambda: {"a@main": counts | {"prefix_cache_queries": 1000, "prefix_cache_hits": 640}}
    )
    scraped = families(_text(registry))
    (config,) = scraped["vllm:cache_config_info"]
    assert config.labels["block_size"] == "16" and config.labels["num_gpu_blocks"] == "256"
    assert config.labels["enable_prefix_caching"] == "True"
    for ours, theirs, expected in (
        ("hfserve_prefix_cache_queries_total", "vllm:prefix_cache_queries_total", 1000),
        ("hfserve_prefix_cache_hits_total", "vllm:prefix_cache_hits_total", 640),
        ("hfserve_preemptions_total", "vllm:num_preemptions_total", 2),
    ):
        assert [(s.labels, s.value) for s in scraped[ours.removesuffix("_total")]] == [({"model": "a@main"}, expected)]
        assert [s.value for s in scraped[theirs.removesuffix("_total")]] == [expected]


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
