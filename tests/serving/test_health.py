"""Liveness, readiness and the metrics exposition as the health service reports them."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from app.engine.options import LoadOptions
from app.models.ids import parse_model_ref
from app.models.registry import ModelRegistry
from app.observability.telemetry import Telemetry
from app.serving.health import HealthService
from app.serving.response_store import ResponseStore
from app.store.backends import open_store
from app.store.base import StoreLimits
from tests.support.models import NEVER_EOS_MODEL_ID, snapshot_path

LIMITS = StoreLimits(max_size=10, ttl=60)


def memory_store() -> ResponseStore:
    return ResponseStore(open_store("memory://", LIMITS))


async def test_an_idle_server_is_alive_and_ready() -> None:
    registry = ModelRegistry(LoadOptions(), idle_timeout=-1)
    health = HealthService(registry, memory_store())
    assert health.liveness() == (True, {"status": "ok", "engines": {}})
    ready, body = await health.readiness()
    assert ready
    assert body == {"status": "ready", "loaded": [], "responses_store": {"url": "memory://", "status": "ok"}}


async def test_a_loaded_model_shows_its_engine_and_a_draining_server_is_not_ready(hf_home: Path) -> None:
    registry = ModelRegistry(LoadOptions(), idle_timeout=-1)
    await registry.start()
    health = HealthService(registry, memory_store())
    ref = parse_model_ref(str(snapshot_path(hf_home, NEVER_EOS_MODEL_ID)))
    try:
        assert [update async for update in registry.load_updates(ref)][-1].status == "ready"
        alive, body = health.liveness()
        assert alive and body["status"] == "ok" and list(body["engines"]) == [ref.name]
        ready, body = await health.readiness()
        assert ready and body["loaded"] == [ref.name]
    finally:
        await registry.close()
    ready, body = await health.readiness()
    assert not ready and body["status"] == "draining" and body["responses_store"]["status"] == "ok"


async def test_an_unreachable_store_is_reported_but_leaves_the_server_ready() -> None:
    store = ResponseStore(open_store("redis://127.0.0.1:1/0", LIMITS))  # nothing listens on port 1
    ready, body = await HealthService(ModelRegistry(LoadOptions(), idle_timeout=-1), store).readiness()
    assert ready and body["status"] == "ready"  # every replica shares the store: it takes none out
    assert body["responses_store"]["status"] == "unavailable" and body["responses_store"]["detail"]
    assert body["responses_store"]["url"].startswith("redis://127.0.0.1:1")


def families(data: bytes) -> set[str]:
    return {family.name for family in text_string_to_metric_families(data.decode())}


def test_metrics_are_the_telemetry_exposition() -> None:
    data, content_type = HealthService(ModelRegistry(LoadOptions()), memory_store(), Telemetry()).metrics()
    assert content_type.startswith("text/plain")
    assert {"hfserve_requests_running", "vllm:num_requests_waiting", "process_resident_memory_bytes"} <= families(data)
    plain, _ = HealthService(ModelRegistry(LoadOptions()), memory_store()).metrics()
    assert "process_resident_memory_bytes" in families(plain)  # without telemetry: the process metrics only
    assert not any(name.startswith(("hfserve_", "vllm:")) for name in families(plain))
