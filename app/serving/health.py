"""Liveness and readiness as the registry and engines see them."""

from __future__ import annotations

from typing import Any

from app.models.registry import ModelRegistry


class HealthService:
    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        """The process answers and every loaded model's inference loop is alive."""
        alive = self._registry.engines_alive()
        return alive, {"status": "ok" if alive else "engine_dead", "engines": self._registry.engine_load()}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        return self._registry.readiness()
