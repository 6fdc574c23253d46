"""GET /health (liveness), GET /ready (readiness), GET /metrics (Prometheus)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get

from app.api.openapi import documented
from app.serving.health import HealthService

_REPORT = documented(json=dict[str, Any], statuses={"503": dict[str, Any]})


class HealthController(Controller):
    @get("/health", cache=False, operation_id="health", summary="Liveness", opt=_REPORT)
    async def health(self, health_service: HealthService) -> Response[dict[str, object]]:
        ok, body = health_service.liveness()
        return Response(body, status_code=200 if ok else 503)

    @get("/ready", cache=False, operation_id="ready", summary="Readiness", opt=_REPORT)
    async def ready(self, health_service: HealthService) -> Response[dict[str, object]]:
        ok, body = await health_service.readiness()
        return Response(body, status_code=200 if ok else 503, headers={} if ok else {"Retry-After": "5"})

    @get("/metrics", cache=False, operation_id="metrics", summary="Prometheus metrics", opt=documented(text=True))
    async def metrics(self, health_service: HealthService) -> Response[bytes]:
        body, content_type = health_service.metrics()
        return Response(body, media_type=content_type)
