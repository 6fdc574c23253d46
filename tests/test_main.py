"""The app factory: settings turned into media, engine and CORS configuration, and an app (run in-process
with no model loaded) whose routes, key check, body limit and error shape are wired."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants
from litestar.testing import TestClient

from app.main import cors_config, create_app, load_options, media_config
from app.observability.telemetry import Telemetry
from app.settings import Settings


def settings(clean_env: pytest.MonkeyPatch, **values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def test_media_config_caps_the_default_frames_and_the_connect_timeout(clean_env: pytest.MonkeyPatch) -> None:
    config = media_config(settings(clean_env, video_frames=20, max_video_frames=12, media_fetch_timeout=2.0))
    assert config.limits.video_frames == 12 and config.limits.max_video_frames == 12
    assert (config.policy.timeout, config.policy.connect_timeout) == (2.0, 2.0)
    assert media_config(settings(clean_env, media_fetch_timeout=60.0)).policy.connect_timeout == 5.0


def test_load_options_carry_the_batch_limits_in_engine_units(clean_env: pytest.MonkeyPatch) -> None:
    options = load_options(
        settings(clean_env, stream_interval_ms=25, max_batch_size=4, cpu_prefill_ms=50), Telemetry(), None
    )
    assert options.limits.stream_interval == 0.025 and options.limits.max_batch_size == 4
    assert options.limits.cpu_prefill_s == 0.05
    assert options.trace_steps is False  # no exporter: the engine records no steps


def test_cors_only_when_enabled(clean_env: pytest.MonkeyPatch) -> None:
    assert cors_config(settings(clean_env)) is None
    config = cors_config(settings(clean_env, enable_cors=True, cors_origins=["http://app.example"]))
    assert config is not None and config.allow_origins == ["http://app.example"]
    assert "X-Request-ID" in config.expose_headers


@pytest.fixture
def client(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[TestClient]:
    clean_env.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache: no model is listed
    app = create_app(settings(clean_env, api_key=["secret"], max_body_size=2048), telemetry=Telemetry())
    with TestClient(app) as test_client:
        yield test_client


def test_probes_answer_and_the_api_needs_the_key(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/ready").json()["responses_store"]["status"] == "ok"
    assert "hfserve_requests_total" in client.get("/metrics").text
    denied = client.get("/v1/models")
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"
    listed = client.get("/v1/models", headers={"Authorization": "Bearer secret"})
    assert listed.status_code == 200 and listed.json()["data"] == []


def test_errors_have_openais_shape(client: TestClient) -> None:
    auth = {"Authorization": "Bearer secret"}
    too_big = client.post("/v1/chat/completions", content=b"x" * 4096, headers=auth)
    assert too_big.status_code == 413 and "error" in too_big.json()
    missing = client.get("/v1/nowhere", headers=auth)
    assert missing.status_code == 404 and set(missing.json()["error"]) == {"message", "type", "param", "code"}
