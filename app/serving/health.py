"""Liveness and readiness as the registry and engines see them, and the metrics."""

from __future__ import annotations

from typing import Any

from app.models.registry import ModelRegistry
from app.observability.telemetry import Telemetry


class HealthService:
    def __init__(self, registry: ModelRegistry, telemetry: Telemetry | None = None) -> None:
        self._registry = registry
        self._telemetry = telemetry or Telemetry(metrics=False)

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        """The process answers and every loaded model's inference loop is alive."""
        alive = self._registry.engines_alive()
        return alive, {"status": "ok" if alive else "engine_dead", "engines": self._registry.engine_load()}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        return self._registry.readiness()

    def metrics(self) -> tuple[bytes, str]:
        """The Prometheus exposition and its content type."""
        return self._telemetry.exposition()
