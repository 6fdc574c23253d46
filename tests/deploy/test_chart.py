"""charts/hfserve rendered with several value sets: what each produces, checked against the image and app.

Every value set also passes ``helm lint --strict`` and ``kubernetes-validate --strict -k 1.30.0``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.chart import CHART, FULLNAME, NAMESPACE, kubernetes_validate, lint, render
from tests.support.server import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
CI_VALUES = list((CHART / "ci").glob("*-values.yaml"))
KEDA = {"enabled": True, "prometheus": {"serverAddress": "http://prometheus-operated.monitoring:9090"}}
INGRESS = {
    "enabled": True,
    "className": "nginx",
    "hosts": [{"host": "llm.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}],
    "tls": [{"secretName": "llm-tls", "hosts": ["llm.example.com"]}],
}

# Custom resources kubernetes-validate does not know: checked field by field (and the InferencePool against its
# CRD, in test_chart_inference_pool.py).
CUSTOM_GROUPS = ("keda.sh", "monitoring.coreos.com", "inference.networking.k8s.io", "gateway.networking.k8s.io")

# The value sets CI lints and validates too (charts/hfserve/ci/*-values.yaml), plus the defaults.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    **{path.name.removesuffix("-values.yaml"): yaml.safe_load(path.read_text()) for path in sorted(CI_VALUES)},
}


def _dockerfile(pattern: str) -> str:
    match = re.search(pattern, DOCKERFILE, re.MULTILINE)
    assert match, pattern
    return match.group(1)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_lints_strict_and_validates_against_kubernetes_1_30(name: str, tmp_path: Path) -> None:
    assert lint(VALUE_SETS[name]) == []
    rendered = render(VALUE_SETS[name])
    output = kubernetes_validate(rendered, tmp_path)
    for manifest in rendered.manifests:
        if manifest["apiVersion"].split("/")[0] in CUSTOM_GROUPS:
            continue  # custom resources: checked field by field below
        assert f"passed for resource {manifest['kind'].lower()}/{manifest['metadata']['name']}" in output, output


def test_defaults_probe_the_right_endpoints_on_the_image_port() -> None:
    rendered = render()
    container = rendered.container
    image_port = int(_dockerfile(r"^EXPOSE (\d+)"))
    assert container["ports"] == [{"name": "http", "containerPort": image_port, "protocol": "TCP"}]
    probes = {kind: container[f"{kind}Probe"] for kind in ("startup", "readiness", "liveness")}
    assert {kind: probe["httpGet"] for kind, probe in probes.items()} == {
        "startup": {"path": "/ready", "port": "http"},
        "readiness": {"path": "/ready", "port": "http"},
        "liveness": {"path": "/health", "port": "http"},
    }
    startup = probes["startup"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 3600  # an hour to download and load
    service = rendered.one("Service")["spec"]
    assert service["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]
    assert service["selector"] == rendered.one("Deployment")["spec"]["selector"]["matchLabels"]
    env = rendered.env()
    assert env["HFSERVE_HOST"] == "0.0.0.0" and env["HFSERVE_PORT"] == str(image_port)
    assert "HFSERVE_MODEL" not in env and "HFSERVE_API_KEY" not in env and "HF_TOKEN" not in env


def test_defaults_mount_cache_shm_and_writable_dirs_under_a_read_only_root() -> None:
    rendered = render()
    pod, container = rendered.pod, rendered.container
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    hf_home = _dockerfile(r"HF_HOME=(\S+)")
    assert rendered.env()["HF_HOME"] == hf_home
    assert volumes[mounts[hf_home]]["persistentVolumeClaim"] == {"claimName": f"{FULLNAME}-cache"}
    assert volumes[mounts["/dev/shm"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "8Gi"}
    home = _dockerfile(r"(?<![_A-Z])HOME=(\S+)")
    assert "emptyDir" in volumes[mounts["/tmp"]] and "emptyDir" in volumes[mounts[home]]
    pvc = rendered.one("PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == f"{FULLNAME}-cache"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "100Gi"

    uid, gid = _dockerfile(r"^USER (\d+):(\d+)"), _dockerfile(r"^USER \d+:(\d+)")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["fsGroup"]) == (int(uid), int(gid))
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["args"] == ["serve"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == rendered.one("ServiceAccount")["metadata"]["name"]
    assert rendered.one("Deployment")["spec"]["replicas"] == 1
    assert rendered.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    for kind in ("Ingress", "HorizontalPodAutoscaler", "ScaledObject", "ServiceMonitor"):
        assert not rendered.has(kind), kind


def test_secrets_are_referenced_never_inlined_and_config_becomes_env() -> None:
    rendered = render(VALUE_SETS["pinned-with-secrets"])
    env = rendered.env()
    assert env["HFSERVE_API_KEY"] == {"secretKeyRef": {"name": "hfserve-keys", "key": "api-keys"}}
    assert env["HF_TOKEN"] == {"secretKeyRef": {"name": "hf-token", "key": "HF_TOKEN"}}
    assert env["HFSERVE_MODEL"] == "Qwen/Qwen2.5-0.5B-Instruct@main"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert (env["HFSERVE_MAX_BATCH_SIZE"], env["HFSERVE_ENABLE_CORS"], env["HFSERVE_DTYPE"]) == (
        "64",
        "true",
        "bfloat16",
    )
    assert not rendered.has("Secret")
    assert "Qwen/Qwen2.5-0.5B-Instruct@main" in rendered.notes and "Bearer" in rendered.notes


def test_config_values_are_settings_the_server_accepts() -> None:
    from app.settings import Settings

    env = {k: v for k, v in render(VALUE_SETS["pinned-with-secrets"]).env().items() if isinstance(v, str)}
    fields = {f"HFSERVE_{name.upper()}" for name in Settings.model_fields}
    assert {k for k in env if k.startswith("HFSERVE_")} <= fields
    settings = Settings.model_validate({k.removeprefix("HFSERVE_").lower(): v for k, v in env.items() if k in fields})
    assert (settings.max_batch_size, settings.enable_cors, settings.host) == (64, True, "0.0.0.0")


def test_ingress_carries_streaming_annotations_that_values_can_override() -> None:
    ingress = render(VALUE_SETS["ingress-hpa-monitor"]).one("Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"hosts": ["llm.example.com"], "secretName": "llm-tls"}]
    (path,) = spec["rules"][0]["http"]["paths"]
    assert path["backend"]["service"] == {"name": FULLNAME, "port": {"name": "http"}}

    override = {**INGRESS, "annotations": {"nginx.ingress.kubernetes.io/proxy-read-timeout": "86400"}}
    annotations = render({"ingress": override}).one("Ingress")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "86400"
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    plain = render({"ingress": {**INGRESS, "nginxStreaming": False}}).one("Ingress")["metadata"]
    assert "annotations" not in plain
    assert "WARNING" in render({"ingress": INGRESS}).notes  # exposed with no API key


def test_hpa_scales_the_deployment_on_cpu_and_memory() -> None:
    rendered = render(VALUE_SETS["ingress-hpa-monitor"])
    hpa = rendered.one("HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": FULLNAME}
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]}
    assert targets == {"cpu": 80, "memory": 70}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 4)
    assert "replicas" not in rendered.one("Deployment")["spec"]  # the autoscaler owns it


def test_keda_scales_on_the_queue_depth_metric() -> None:
    rendered = render(VALUE_SETS["keda-existing-claim"])
    scaled = rendered.one("ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == FULLNAME
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    meta = trigger["metadata"]
    assert meta["serverAddress"] == KEDA["prometheus"]["serverAddress"]
    assert meta["query"] == f'sum(hfserve_requests_waiting{{namespace="{NAMESPACE}",service="{FULLNAME}"}})'
    assert meta["threshold"] == "4"
    assert "replicas" not in rendered.one("Deployment")["spec"] and not rendered.has("HorizontalPodAutoscaler")

    renamed = {**KEDA, "prometheus": {**KEDA["prometheus"], "metricName": "hfserve_queue", "threshold": 10}}
    meta = render({"keda": renamed}).one("ScaledObject")["spec"]["triggers"][0]["metadata"]
    assert meta["query"].startswith("sum(hfserve_queue{") and meta["threshold"] == "10"
    custom = {**KEDA, "prometheus": {**KEDA["prometheus"], "query": "max(hfserve_requests_waiting)"}}
    assert render({"keda": custom}).one("ScaledObject")["spec"]["triggers"][0]["metadata"]["query"] == (
        "max(hfserve_requests_waiting)"
    )


def test_keda_and_hpa_are_exclusive() -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmError, match="exclusive"):
        render({"keda": KEDA, "autoscaling": {"enabled": True}})


def test_existing_claim_and_ephemeral_cache() -> None:
    rendered = render(VALUE_SETS["keda-existing-claim"])
    volumes = {v["name"]: v for v in rendered.pod["volumes"]}
    assert volumes["model-cache"]["persistentVolumeClaim"] == {"claimName": "models"}
    assert not rendered.has("PersistentVolumeClaim")

    ephemeral = render(VALUE_SETS["cpu-only-ephemeral"])
    volumes = {v["name"]: v for v in ephemeral.pod["volumes"]}
    assert volumes["model-cache"] == {"name": "model-cache", "emptyDir": {}}
    assert "shm" not in volumes and not ephemeral.has("PersistentVolumeClaim")
    assert "nvidia.com/gpu" not in ephemeral.container["resources"].get("limits", {})
    assert not ephemeral.has("PodDisruptionBudget") and not ephemeral.has("ServiceAccount")
    assert ephemeral.pod["serviceAccountName"] == "default"


def test_pdb_min_available_replaces_max_unavailable() -> None:
    spec = render({"podDisruptionBudget": {"minAvailable": "50%"}}).one("PodDisruptionBudget")["spec"]
    assert spec["minAvailable"] == "50%" and "maxUnavailable" not in spec


def test_service_monitor_scrapes_metrics_on_the_service_port() -> None:
    rendered = render(VALUE_SETS["ingress-hpa-monitor"])
    monitor = rendered.one("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    service_labels = rendered.one("Service")["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_the_drain_grace_reaches_the_server_and_fits_in_the_termination_grace() -> None:
    rendered = render({"drainGraceSeconds": 15, "terminationGracePeriodSeconds": 90})
    assert rendered.env()["HFSERVE_DRAIN_GRACE"] == "15"
    assert rendered.pod["terminationGracePeriodSeconds"] == 90
    assert "preStop" not in str(rendered.container)  # the server keeps its listener open itself: no sleep hook
    import helm_python as helm

    with pytest.raises(helm.HelmError, match="terminationGracePeriodSeconds must exceed drainGraceSeconds"):
        render({"drainGraceSeconds": 60, "terminationGracePeriodSeconds": 60})
