"""The deployment files lint clean, and the workflows (which cannot run here) agree with the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.server import ROOT

BIN = Path(sys.executable).parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the bare key `on` as true
    return data


def test_hadolint_is_clean() -> None:
    result = run(str(BIN / "hadolint"), "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_yamllint_is_clean() -> None:
    result = run(str(BIN / "yamllint"), "-s", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_match_the_github_actions_schema() -> None:
    assert [p.name for p in WORKFLOWS] == ["chart.yml", "ci.yml", "release.yml"]
    result = run(str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_shell_steps_parse(workflow: Path, tmp_path: Path) -> None:
    for job_name, job in load(workflow)["jobs"].items():
        for index, step in enumerate(job["steps"]):
            if "run" not in step:
                continue
            script = tmp_path / f"{job_name}-{index}.sh"
            script.write_text(re.sub(r"\$\{\{.*?\}\}", "EXPR", step["run"]))  # expressions are substituted
            result = run("bash", "-n", str(script))
            assert result.returncode == 0, f"{workflow.name} {job_name} step {index}: {result.stderr}"


def test_ci_workflow_runs_lint_typecheck_and_the_suite_on_pull_requests() -> None:
    ci = load(ROOT / ".github/workflows/ci.yml")
    assert "pull_request" in ci["on"]
    runs = {name: " ".join(step.get("run", "") for step in job["steps"]) for name, job in ci["jobs"].items()}
    assert "ruff check" in runs["lint"] and "lint-imports" in runs["lint"] and "hadolint" in runs["lint"]
    assert "mypy" in runs["typecheck"]
    assert "make test" in runs["test"]
    env = ci["jobs"]["test"]["env"]
    sources = "".join(p.read_text() for p in (ROOT / "tests").rglob("*.py"))
    for name in env:
        assert name in sources, f"{name} is set for the tests but no test reads it"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:", makefile, re.MULTILINE) and re.search(r"^install:", makefile, re.MULTILINE)


def test_release_workflow_builds_and_pushes_on_tags_with_cache() -> None:
    release = load(ROOT / ".github/workflows/release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    steps = release["jobs"]["image"]["steps"]
    build = next(step for step in steps if step.get("uses", "").startswith("docker/build-push-action"))
    assert build["with"]["push"] is True
    assert build["with"]["cache-from"].startswith("type=gha") and build["with"]["cache-to"].startswith("type=gha")
    assert any(step.get("uses", "").startswith("docker/setup-buildx-action") for step in steps)
    declared = set(re.findall(r"^ARG (\w+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE))
    passed = {line.split("=", 1)[0].strip() for line in build["with"]["build-args"].splitlines() if line.strip()}
    assert passed <= declared, f"build args the Dockerfile does not declare: {passed - declared}"
    for entry in release["jobs"]["image"]["strategy"]["matrix"]["include"]:
        assert entry["base_image"] and entry["variant"] in ("cuda", "cpu")


def test_chart_workflow_lints_validates_and_packages_every_value_set() -> None:
    chart = load(ROOT / ".github/workflows/chart.yml")
    script = " ".join(step.get("run", "") for step in chart["jobs"]["chart"]["steps"])
    assert "helm lint --strict" in script and "kubernetes-validate --strict -k 1.30.0" in script
    assert "charts/hfserve/ci/*-values.yaml" in script and "helm package" in script and "helm push" in script
    assert list((ROOT / "charts/hfserve/ci").glob("*-values.yaml"))
