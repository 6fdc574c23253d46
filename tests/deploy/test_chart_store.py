"""charts/hfserve's response store: SQLite on the cache volume by default, a shared Redis from an existing
Secret, or a Valkey the chart deploys (the built-in kinds are validated by kubernetes-validate in
test_chart.py through the `shared-store` CI value set)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from app.store.urls import check_store_url
from tests.support.chart import FULLNAME, lint, render
from tests.support.server import ROOT

VALKEY = f"{FULLNAME}-valkey"
SHARED = {"backend": "redis", "valkey": {"enabled": True}}


def store_env(values: dict[str, Any]) -> Any:
    return render(values).env()["HFSERVE_RESPONSES_STORE"]


def test_the_default_is_sqlite_on_the_cache_volume_as_in_the_image() -> None:
    rendered = render()
    url = rendered.env()["HFSERVE_RESPONSES_STORE"]
    assert check_store_url(url) == url
    (cache_mount,) = [m for m in rendered.container["volumeMounts"] if m["name"] == "model-cache"]
    assert url.removeprefix("sqlite:///").startswith(cache_mount["mountPath"] + "/")  # an absolute path
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(rf"HFSERVE_RESPONSES_STORE={re.escape(url)}\b", dockerfile)


def test_memory() -> None:
    assert store_env({"responsesStore": {"backend": "memory"}}) == "memory://"


def test_an_existing_redis_comes_from_its_secret() -> None:
    rendered = render({"responsesStore": {"backend": "redis", "redis": {"existingSecret": "cache", "key": "dsn"}}})
    assert rendered.env()["HFSERVE_RESPONSES_STORE"] == {"secretKeyRef": {"name": "cache", "key": "dsn"}}
    assert not rendered.has("Secret") and [
        m["metadata"]["name"] for m in rendered.manifests if m["kind"] == "Deployment"
    ] == [FULLNAME]


def test_a_deployed_valkey_is_what_the_url_in_its_secret_names() -> None:
    rendered = render({"responsesStore": SHARED})
    assert rendered.env()["HFSERVE_RESPONSES_STORE"] == {"secretKeyRef": {"name": VALKEY, "key": "url"}}
    secret = rendered.named("Secret", VALKEY)["stringData"]
    url = urlsplit(secret["url"])
    assert check_store_url(secret["url"]) == secret["url"]
    assert (url.scheme, url.password, url.hostname, url.port) == ("redis", secret["password"], VALKEY, 6379)
    assert len(secret["password"]) >= 32
    service = rendered.named("Service", VALKEY)
    assert [p["port"] for p in service["spec"]["ports"]] == [6379]
    valkey = rendered.named("Deployment", VALKEY)["spec"]["template"]
    assert service["spec"]["selector"].items() <= valkey["metadata"]["labels"].items()
    (container,) = valkey["spec"]["containers"]
    assert container["args"][:2] == ["--requirepass", "$(VALKEY_PASSWORD)"]
    assert container["env"] == [
        {"name": "VALKEY_PASSWORD", "valueFrom": {"secretKeyRef": {"name": VALKEY, "key": "password"}}}
    ]
    assert valkey["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": VALKEY}}]
    hfserve_labels = rendered.named("Deployment", FULLNAME)["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= hfserve_labels.items()


def test_valkey_without_persistence_keeps_no_claim() -> None:
    rendered = render({"responsesStore": {**SHARED, "valkey": {"enabled": True, "persistence": {"enabled": False}}}})
    assert [m["metadata"]["name"] for m in rendered.manifests if m["kind"] == "PersistentVolumeClaim"] == [
        f"{FULLNAME}-cache"
    ]


@pytest.mark.parametrize(
    ("store", "complaint"),
    [
        ({"backend": "redis"}, "existingSecret"),  # redis with nowhere to find it
        ({"valkey": {"enabled": True}}, "backend"),  # a Valkey nothing would use
        ({"backend": "postgres"}, "backend"),
    ],
)
def test_values_the_schema_refuses(store: dict[str, Any], complaint: str) -> None:
    problems = lint({"responsesStore": store})
    assert problems and complaint in " ".join(problems), problems


@pytest.mark.parametrize(
    ("values", "warned"),
    [
        ({"replicaCount": 2}, True),
        ({"autoscaling": {"enabled": True}}, True),
        ({"replicaCount": 2, "responsesStore": SHARED}, False),
        ({}, False),
    ],
)
def test_notes_warn_when_replicas_do_not_share_the_store(values: dict[str, Any], warned: bool) -> None:
    assert ("stored responses" in render(values).notes) is warned
