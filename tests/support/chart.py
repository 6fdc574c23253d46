"""Render and validate charts/hfserve offline, with the real Helm engine (helm-python-sdk) and the
Kubernetes OpenAPI schemas (kubernetes-validate)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.server import ROOT

CHART = ROOT / "charts" / "hfserve"
KUBE_VERSION = "1.30.0"
RELEASE, NAMESPACE = "demo", "ml"
FULLNAME = f"{RELEASE}-hfserve"


@dataclass
class Rendered:
    manifests: list[dict[str, Any]]
    notes: str
    raw: dict[str, str]  # template path -> rendered text, as `helm template` prints it

    def kinds(self) -> list[str]:
        return sorted(m["kind"] for m in self.manifests)

    def one(self, kind: str) -> dict[str, Any]:
        found = [m for m in self.manifests if m["kind"] == kind]
        assert len(found) == 1, f"expected one {kind}, got {self.kinds()}"
        return found[0]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        (found,) = [m for m in self.manifests if m["kind"] == kind and m["metadata"]["name"] == name]
        return found

    def has(self, kind: str) -> bool:
        return any(m["kind"] == kind for m in self.manifests)

    @property
    def pod(self) -> dict[str, Any]:
        """The hfserve pods (an endpoint picker, when deployed, is a second Deployment)."""
        return self.named("Deployment", FULLNAME)["spec"]["template"]["spec"]

    @property
    def container(self) -> dict[str, Any]:
        (container,) = self.pod["containers"]
        return container

    def env(self) -> dict[str, Any]:
        """Container env by name: the plain value, or the ``valueFrom`` mapping."""
        return {e["name"]: e.get("value", e.get("valueFrom")) for e in self.container["env"]}


def render(values: dict[str, Any] | None = None) -> Rendered:
    import helm_python as helm

    with helm.Chart.load(CHART) as chart:
        output = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    manifests = [
        doc
        for path, text in sorted(output.items())
        if path.endswith((".yaml", ".yml"))
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    notes = next((text for path, text in output.items() if path.endswith("NOTES.txt")), "")
    raw = {path: text for path, text in output.items() if path.endswith((".yaml", ".yml")) and text.strip()}
    return Rendered(manifests, notes, raw)


def lint(values: dict[str, Any] | None = None) -> list[str]:
    """``helm lint --strict``: the warnings and errors (strict fails on both)."""
    import helm_python as helm

    report = helm.lint(CHART, values or {}, strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2]
    return problems + list(report.get("errors") or [])


def kubernetes_validate(rendered: Rendered, folder: Path) -> str:
    """``kubernetes-validate --strict -k 1.30.0`` over the rendered files; returns its output, fails on a rejection."""
    files = []
    for template, text in sorted(rendered.raw.items()):
        path = folder / Path(template).name
        path.write_text(text)
        files.append(str(path))
    command = [str(Path(sys.executable).parent / "kubernetes-validate"), "--strict", "-k", KUBE_VERSION, *files]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output
