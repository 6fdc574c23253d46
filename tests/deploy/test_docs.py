"""The docs and deployment files name real settings, and the README lists every one of them."""

from __future__ import annotations

import re

import pytest

from app.settings import Settings
from tests.support.server import ROOT

SETTINGS = {f"HFSERVE_{name.upper()}" for name in Settings.model_fields}
# Not settings: names the tests, the test fixtures and the Compose file use for themselves.
NOT_SETTINGS = {
    "HFSERVE_IMAGE",  # Compose: image of the GPU service
    "HFSERVE_CPU_IMAGE",  # Compose: image of the CPU service
    "HFSERVE_PUBLISH",  # Compose: address:port to publish
    "HFSERVE_REQUIRE_DOCKER",  # tests: fail instead of skip without a Docker engine
    "HFSERVE_TEST_BASE_IMAGE",  # tests: base image instead of the debootstrapped one
    "HFSERVE_TEST_TORCH_VERSION",  # tests: torch version of the wheel put into the image
    "HFSERVE_DEPLOY_CACHE",  # tests: machine-wide cache folder
    "HFSERVE_DEBIAN_MIRROR",  # tests: mirror for debootstrap
}
FILES = [
    "README.md",
    "docs/deployment.md",
    "docker-compose.yml",
    "Dockerfile",
    "docker/healthcheck.py",
    "charts/hfserve/values.yaml",
    "charts/hfserve/values.schema.json",
    "charts/hfserve/templates/deployment.yaml",
    *[str(p.relative_to(ROOT)) for p in (ROOT / "charts/hfserve/ci").glob("*.yaml")],
]


def test_readme_lists_every_setting_with_default_and_meaning() -> None:
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"`HFSERVE_[A-Z0-9_]+`", cells[1]):
            rows[cells[1].strip("`")] = cells
    missing = SETTINGS - set(rows)
    assert not missing, f"add these to the README's environment table: {sorted(missing)}"
    for name in SETTINGS:
        _, _, default, meaning = rows[name]
        assert default and meaning, name


@pytest.mark.parametrize("path", FILES)
def test_deployment_files_name_only_real_settings(path: str) -> None:
    named = set(re.findall(r"HFSERVE_[A-Z0-9_]*[A-Z0-9]", (ROOT / path).read_text()))
    unknown = named - SETTINGS - NOT_SETTINGS
    assert not unknown, f"{path} names settings that do not exist: {sorted(unknown)}"


def test_docs_point_at_the_deployment_guide() -> None:
    assert "docs/deployment.md" in (ROOT / "README.md").read_text()
    architecture = (ROOT / "docs/architecture.md").read_text()
    for path in ("Dockerfile", "docker-compose.yml", "charts/hfserve/", ".github/workflows/", "tests/deploy/"):
        assert path in architecture, path
        assert (ROOT / path).exists(), path
