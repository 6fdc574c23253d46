"""charts/hfserve's values: the schema refuses bad ones, every value is documented, the chart packages."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.chart import CHART, render
from tests.support.server import ROOT

BAD_VALUES: dict[str, dict[str, Any]] = {
    "unknown top-level key": {"replicas": 2},
    "replicaCount as text": {"replicaCount": "two"},
    "chart-owned setting in config": {"config": {"HFSERVE_PORT": 9000}},
    "config name that is not HFSERVE_*": {"config": {"max_batch_size": 8}},
    "config value that is a map": {"config": {"HFSERVE_CHAT_TEMPLATE_KWARGS": {"a": 1}}},
    "unknown pull policy": {"image": {"pullPolicy": "Sometimes"}},
    "service port out of range": {"service": {"port": 70000}},
    "zero GPUs": {"gpu": {"count": 0}},
    "unknown access mode": {"persistence": {"accessModes": ["ReadWriteSometimes"]}},
    "size that is no quantity": {"persistence": {"size": "lots"}},
    "probe threshold zero": {"probes": {"startup": {"failureThreshold": 0}}},
    "ingress path without slash": {
        "ingress": {
            "enabled": True,
            "hosts": [{"host": "a.example.com", "paths": [{"path": "v1", "pathType": "Prefix"}]}],
        }
    },
    "keda without a Prometheus address": {"keda": {"enabled": True}},
    "keda with an address that is no URL": {"keda": {"enabled": True, "prometheus": {"serverAddress": "prometheus"}}},
    "bad metric name": {"keda": {"prometheus": {"metricName": "hfserve-requests-waiting"}}},
    "pdb minAvailable as text": {"podDisruptionBudget": {"minAvailable": "half"}},
    "scrape interval without unit": {"metrics": {"serviceMonitor": {"interval": "30"}}},
    "typo in a nested key": {"huggingface": {"tokens": {"existingSecret": "x"}}},
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_schema_rejects(case: str) -> None:
    import helm_python as helm

    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema(BAD_VALUES[case])
    with pytest.raises(helm.HelmError):  # and so does rendering, as `helm install` would
        render(BAD_VALUES[case])


def test_schema_accepts_the_documented_examples() -> None:
    import helm_python as helm

    examples = [
        {"config": {"HFSERVE_MAX_BATCH_SIZE": 64, "HFSERVE_DTYPE": "bfloat16", "HFSERVE_ENABLE_CORS": True}},
        {"podDisruptionBudget": {"minAvailable": "50%"}},
        {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
        {"extraEnv": [{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel-collector:4318"}]},
        {"global": {"imageRegistry": "registry.example.com"}},
    ]
    with helm.Chart.load(CHART) as chart:
        for values in examples:
            chart.validate_schema(values)


def _values_doc() -> Any:
    spec = importlib.util.spec_from_file_location("chart_values_doc", ROOT / "scripts" / "chart_values_doc.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_value_has_a_helm_docs_description() -> None:
    documented, undocumented = _values_doc().documented_keys((CHART / "values.yaml").read_text().splitlines())
    assert undocumented == []
    expected = {"replicaCount", "model", "config", "keda.prometheus.metricName", "probes.startup.failureThreshold"}
    assert expected <= set(documented)
    assert all(documented.values())


def test_documenting_finds_undocumented_leaves() -> None:
    lines = ["# -- doc", "a: 1", "b:", "  # -- doc", "  c: 2", "  d: 3", "# -- doc", "e:", "  f: 1"]
    documented, undocumented = _values_doc().documented_keys(lines)
    assert (list(documented), undocumented) == (["a", "b.c", "e"], ["b.d"])


def test_chart_readme_values_table_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "chart_values_doc.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    row = '| keda.prometheus.metricName | string | `"hfserve_requests_waiting"` |'
    assert row in (CHART / "README.md").read_text()


def test_every_value_is_in_the_schema_and_defaults_validate() -> None:
    import helm_python as helm

    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(node: dict[str, Any], props: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            assert key in props["properties"], f"{prefix}{key} is missing from values.schema.json"
            child = props["properties"][key]
            if isinstance(value, dict) and "properties" in child:
                walk(value, child, f"{prefix}{key}.")

    walk(values, schema, "")
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values)
    assert values["keda"]["prometheus"]["metricName"] == "hfserve_requests_waiting"


def test_chart_packages_and_the_package_renders(tmp_path: Path) -> None:
    import helm_python as helm

    archive = helm.package(CHART, destination=tmp_path)
    assert Path(archive).name == "hfserve-0.1.0.tgz"
    with helm.Chart.load(archive) as packaged:
        assert packaged.metadata["appVersion"] == "0.1.0"
        assert packaged.schema is not None
        kinds = {path.rsplit("/", 1)[-1] for path, text in packaged.render({}, name="demo").items() if text.strip()}
    assert {"deployment.yaml", "service.yaml", "pvc.yaml", "NOTES.txt"} <= kinds
