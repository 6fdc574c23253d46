"""Prometheus metrics, in a registry per app (tests build several apps in one process).

Labels stay few and bounded: ``model`` (only names of loaded models), ``endpoint`` (route templates),
``status``, ``finish_reason`` and error ``type`` (codes of our own errors). No request ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5, 10, 20, 40, 80, 160, 320)
TOKEN_GAP_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2.5)
LOAD_BUCKETS = (0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640, 1280)

# model -> {"running": rows, "waiting": requests, "kv_usage": 0-1, "kv_capacity": tokens (0: not bounded)}
EngineLoad = Callable[[], Mapping[str, Mapping[str, float]]]

__all__ = ["CONTENT_TYPE_LATEST", "RequestMetrics", "new_registry"]


def new_registry() -> CollectorRegistry:
    """A registry with the process, platform and GC collectors the default one has."""
    registry = CollectorRegistry()
    for default, make in (
        (PROCESS_COLLECTOR, lambda: ProcessCollector(registry=registry)),
        (PLATFORM_COLLECTOR, lambda: PlatformCollector(registry=registry)),
        (GC_COLLECTOR, lambda: GCCollector(registry=registry)),
    ):
        if default is not None:
            make()
    return registry


_RUNNING = "Sequences being decoded (a request with n choices counts n)."
_WAITING = "Requests admitted and waiting for their first token."
_KV_USAGE = "Share of the KV cache in use, 0-1 (the --max-kv-tokens budget; without one, the batch's rows)."
_CACHE_CONFIG = "The KV cache's configuration, as labels (a paged cache's blocks; else one block per token slot)."
_QUERIES = "Prompt tokens looked up in the prefix cache."
_HITS = "Prompt tokens found in the prefix cache (their prefill skipped)."
_PREEMPTIONS = "Sequences preempted for want of KV blocks (their blocks freed, recomputed later)."
# engine_load key -> (hfserve name, vLLM name, help): counters since each model loaded
_COUNTERS = {
    "prefix_cache_queries": ("hfserve_prefix_cache_queries", "vllm:prefix_cache_queries", _QUERIES),
    "prefix_cache_hits": ("hfserve_prefix_cache_hits", "vllm:prefix_cache_hits", _HITS),
    "preemptions": ("hfserve_preemptions", "vllm:num_preemptions", _PREEMPTIONS),
}


class _EngineCollector:
    """Read at scrape time from the engines themselves: nothing to keep in step on the request path.

    The load gauges are exported twice: under hfserve's names, and under the vLLM names that inference
    routers read by default (the Gateway API Inference Extension's endpoint picker, llm-d), with vLLM's
    ``model_name`` label."""

    def __init__(self) -> None:
        self.source: EngineLoad = dict

    def collect(self) -> Iterator[Metric]:
        load = self.source()
        ours = {
            "running": GaugeMetricFamily("hfserve_requests_running", _RUNNING, labels=["model"]),
            "waiting": GaugeMetricFamily("hfserve_requests_waiting", _WAITING, labels=["model"]),
            "kv_usage": GaugeMetricFamily("hfserve_kv_cache_usage", _KV_USAGE, labels=["model"]),
        }
        routers = {
            "running": GaugeMetricFamily("vllm:num_requests_running", _RUNNING, labels=["model_name"]),
            "waiting": GaugeMetricFamily("vllm:num_requests_waiting", _WAITING, labels=["model_name"]),
            "kv_usage": GaugeMetricFamily("vllm:kv_cache_usage_perc", _KV_USAGE, labels=["model_name"]),
        }
        loaded = GaugeMetricFamily("hfserve_model_loaded", "1 for every model loaded and ready.", labels=["model"])
        config = GaugeMetricFamily(
            "vllm:cache_config_info",
            _CACHE_CONFIG,
            labels=["model_name", "block_size", "num_gpu_blocks", "enable_prefix_caching"],
        )
        counters = {
            key: (
                CounterMetricFamily(name, text, labels=["model"]),
                CounterMetricFamily(router_name, text, labels=["model_name"]),
            )
            for key, (name, router_name, text) in _COUNTERS.items()
        }
        for model, counts in load.items():
            for key in ours:
                ours[key].add_metric([model], counts.get(key, 0))
                routers[key].add_metric([model], counts.get(key, 0))
            for key, families in counters.items():
                for family in families:
                    family.add_metric([model], counts.get(key, 0))
            loaded.add_metric([model], 1)
            config.add_metric([model, *_cache_config(counts)], 1)
        yield from (*ours.values(), loaded, *routers.values(), config)
        yield from (family for families in counters.values() for family in families)


def _cache_config(counts: Mapping[str, float]) -> list[str]:
    """(block_size, num_gpu_blocks, enable_prefix_caching) of a paged cache; a padded one counts token slots."""
    blocks = int(counts.get("kv_blocks_total", 0))
    if blocks:
        size = int(counts.get("kv_capacity", 0)) // blocks
        return [str(size), str(blocks), str(bool(counts.get("prefix_caching", 0)))]
    return ["1", str(int(counts.get("kv_capacity", 0))), "False"]


class RequestMetrics:
    """Every metric about requests, tokens, models and errors."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        by_request = ["model", "endpoint"]
        self.ttft = Histogram(
            "hfserve_time_to_first_token_seconds",
            "From the request's arrival to its first generated token.",
            by_request,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.itl = Histogram(
            "hfserve_inter_token_latency_seconds",
            "Gap between consecutive tokens of a choice as they reach the HTTP side (tokens that arrive "
            "together share the gap).",
            ["model"],
            buckets=TOKEN_GAP_BUCKETS,
            registry=registry,
        )
        self.e2e = Histogram(
            "hfserve_e2e_request_latency_seconds",
            "From the request's arrival to its last byte sent, for requests that reached a model.",
            by_request,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.queue = Histogram(
            "hfserve_request_queue_time_seconds",
            "From admission to the start of the request's prefill in the engine.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.model_load = Histogram(
            "hfserve_model_load_duration_seconds",
            "Time to load a model, download included.",
            ["model"],
            buckets=LOAD_BUCKETS,
            registry=registry,
        )
        self.prompt_tokens = Counter("hfserve_prompt_tokens", "Prompt tokens prefilled.", ["model"], registry=registry)
        self.generation_tokens = Counter("hfserve_generation_tokens", "Tokens generated.", ["model"], registry=registry)
        self.requests = Counter(
            "hfserve_requests",
            "HTTP requests by endpoint, status (499: the client left before the response was complete) and "
            "finish reason of their choices (none: no generation).",
            ["model", "endpoint", "status", "finish_reason"],
            registry=registry,
        )
        self.disconnects = Counter(
            "hfserve_client_disconnects",
            "Requests whose client went away before the response was complete.",
            ["model", "endpoint"],
            registry=registry,
        )
        self.errors = Counter(
            "hfserve_errors",
            "Error responses and errors sent mid-stream, by error code.",
            ["endpoint", "type"],
            registry=registry,
        )
        self._engines = _EngineCollector()
        registry.register(self._engines)  # type: ignore[arg-type]

    def watch_engines(self, source: EngineLoad) -> None:
        """Where the running/waiting/loaded gauges are read from at scrape time."""
        self._engines.source = source


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
