"""Liveness and readiness as the registry and engines see them, and the metrics."""

from __future__ import annotations

from typing import Any

from app.errors import HfServeError
from app.models.registry import ModelRegistry
from app.observability.telemetry import Telemetry
from app.serving.response_store import ResponseStore


class HealthService:
    def __init__(self, registry: ModelRegistry, store: ResponseStore, telemetry: Telemetry | None = None) -> None:
        self._registry, self._store = registry, store
        self._telemetry = telemetry or Telemetry(metrics=False)

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        """The process answers and every loaded model's inference loop is alive."""
        alive = self._registry.engines_alive()
        return alive, {"status": "ok" if alive else "engine_dead", "engines": self._registry.engine_load()}

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when the pinned model (if any) is loaded. The body also says whether the response store
        answers; a store that is down does not make the server unready: every replica shares it, and taking
        them all out of the load balancer would stop chat and completions too, which do not need it (requests
        that do need it get a 503 that says so)."""
        ready, body = self._registry.readiness()
        store: dict[str, Any] = {"url": self._store.url, "status": "ok"}
        try:
            await self._store.check()
        except HfServeError as exc:
            store = {**store, "status": "unavailable", "detail": exc.message}
        return ready, {**body, "responses_store": store}

    def metrics(self) -> tuple[bytes, str]:
        """The Prometheus exposition and its content type."""
        return self._telemetry.exposition()
