"""charts/hfserve behind an inference gateway: the InferencePool, its endpoint picker, the HTTPRoute and the
llm-d labels, rendered by the real Helm engine. The InferencePool is validated against the Gateway API Inference
Extension's own CRD schema (a copy in tests/deploy/crds/), the built-in kinds by kubernetes-validate in
test_chart.py (the `inference-pool` CI value set)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support.chart import FULLNAME, NAMESPACE, lint, render

CRD = Path(__file__).parent / "crds" / "inference.networking.k8s.io_inferencepools.yaml"
MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
POOL = {"enabled": True}
PICKER = f"{FULLNAME}-epp"


def pool_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


def validate_pool(pool: dict[str, Any]) -> None:
    """The CRD's OpenAPI schema, plus its one CEL rule (a Service reference names a port)."""
    jsonschema.Draft7Validator(pool_schema()).validate(pool)
    ref = pool["spec"]["endpointPickerRef"]
    assert ref.get("kind", "Service") != "Service" or "port" in ref


def args_of(container: dict[str, Any]) -> dict[str, str]:
    args = container["args"]
    return {args[i]: args[i + 1] for i in range(0, len(args) - 1, 2) if args[i].startswith("--")}


def test_off_by_default() -> None:
    rendered = render({"model": MODEL})
    assert not rendered.has("InferencePool") and not rendered.has("HTTPRoute") and not rendered.has("Role")
    assert [m["metadata"]["name"] for m in rendered.manifests if m["kind"] == "Deployment"] == [FULLNAME]


def test_the_pool_selects_the_hfserve_pods_and_validates_against_the_crd() -> None:
    rendered = render({"model": MODEL, "inferencePool": POOL})
    pool = rendered.one("InferencePool")
    validate_pool(pool)
    assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
    hfserve = rendered.named("Deployment", FULLNAME)
    pod_labels = hfserve["spec"]["template"]["metadata"]["labels"]
    assert pool["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    picker_labels = rendered.named("Deployment", PICKER)["spec"]["template"]["metadata"]["labels"]
    assert not pool["spec"]["selector"]["matchLabels"].items() <= picker_labels.items()
    (port,) = rendered.container["ports"]
    assert pool["spec"]["targetPorts"] == [{"number": port["containerPort"]}]


def test_the_crd_copy_rejects_what_a_cluster_would() -> None:
    """The schema check is not vacuous: a pool without targetPorts, or with two of the same, is refused."""
    pool = render({"inferencePool": POOL}).one("InferencePool")
    broken = {**pool, "spec": {k: v for k, v in pool["spec"].items() if k != "targetPorts"}}
    with pytest.raises(jsonschema.ValidationError, match="targetPorts"):
        validate_pool(broken)
    with pytest.raises(jsonschema.ValidationError):
        validate_pool({**pool, "spec": {**pool["spec"], "targetPorts": [{"number": 70000}]}})


def test_the_deployed_picker_serves_this_pool_with_the_least_rights() -> None:
    rendered = render(
        {"inferencePool": {**POOL, "endpointPicker": {"failureMode": "FailOpen", "extraArgs": ["--v", "3"]}}}
    )
    pool = rendered.one("InferencePool")
    ref = pool["spec"]["endpointPickerRef"]
    assert (ref["name"], ref["failureMode"]) == (PICKER, "FailOpen")
    service = rendered.named("Service", PICKER)
    assert [p["port"] for p in service["spec"]["ports"]] == [ref["port"]["number"]]
    picker = rendered.named("Deployment", PICKER)
    assert service["spec"]["selector"].items() <= picker["spec"]["template"]["metadata"]["labels"].items()
    pod = picker["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = args_of(container)
    assert (args["--pool-name"], args["--pool-namespace"]) == (pool["metadata"]["name"], NAMESPACE)
    assert args["--pool-group"] == "inference.networking.k8s.io" and args["--v"] == "3"
    grpc = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert grpc["grpc-ext-proc"] == int(args["--grpc-port"])
    assert container["readinessProbe"]["grpc"]["port"] == int(args["--grpc-health-port"])
    assert pod["serviceAccountName"] == PICKER
    role, binding = rendered.named("Role", PICKER), rendered.named("RoleBinding", PICKER)
    assert {(tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"]) for r in role["rules"]} == {
        (("",), ("pods",)): {"get", "list", "watch"},
        (("inference.networking.k8s.io",), ("inferencepools",)): {"get", "list", "watch"},
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": PICKER, "namespace": NAMESPACE}]
    assert binding["roleRef"]["name"] == PICKER


def test_an_existing_picker_is_referenced_and_nothing_is_deployed() -> None:
    values = {"inferencePool": {**POOL, "name": "llm", "endpointPicker": {"deploy": False, "existingService": "epp"}}}
    rendered = render(values)
    pool = rendered.one("InferencePool")
    validate_pool(pool)
    assert pool["metadata"]["name"] == "llm" and pool["spec"]["endpointPickerRef"]["name"] == "epp"
    assert not rendered.has("Role") and not rendered.has("RoleBinding")
    assert [m["metadata"]["name"] for m in rendered.manifests if m["kind"] == "Deployment"] == [FULLNAME]


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"endpointPicker": {"deploy": False}}, "existingService"),
        ({"endpointPicker": {"failureMode": "Sometimes"}}, "failureMode"),
        ({"httpRoute": {"enabled": True}}, "parentRefs"),
        ({"replicas": 2}, "replicas"),  # not a key of the pool
        ({"endpointPicker": {"replicas": 2}}, "replicas"),  # one picker without leader election
    ],
)
def test_values_the_schema_refuses(values: dict[str, Any], complaint: str) -> None:
    problems = lint({"inferencePool": {**POOL, **values}})
    assert problems and complaint in " ".join(problems), problems


def test_the_route_sends_a_gateways_traffic_to_the_pool() -> None:
    gateway = {"name": "inference-gateway", "namespace": "gateways"}
    route_values = {"enabled": True, "parentRefs": [gateway], "hostnames": ["llm.example.com"]}
    rendered = render({"inferencePool": {**POOL, "httpRoute": route_values}})
    route = rendered.one("HTTPRoute")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", **gateway}]
    assert route["spec"]["hostnames"] == ["llm.example.com"]
    (rule,) = route["spec"]["rules"]
    assert rule["backendRefs"] == [
        {
            "group": "inference.networking.k8s.io",
            "kind": "InferencePool",
            "name": rendered.one("InferencePool")["metadata"]["name"],
        }
    ]
    assert rule["timeouts"]["request"] == "3600s"


@pytest.mark.parametrize(
    ("values", "label"),
    [
        ({"model": MODEL}, "Qwen-Qwen2.5-0.5B-Instruct"),
        ({"model": "meta-llama/Llama-3.1-8B@0e9e39f"}, "meta-llama-Llama-3.1-8B-0e9e39f"),
        ({}, "any"),
        ({"model": MODEL, "modelLabel": "qwen-small"}, "qwen-small"),
    ],
)
def test_pods_carry_the_llm_d_labels(values: dict[str, Any], label: str) -> None:
    labels = render(values).named("Deployment", FULLNAME)["spec"]["template"]["metadata"]["labels"]
    assert labels["llm-d.ai/inferenceServing"] == "true"
    assert labels["llm-d.ai/model"] == label
