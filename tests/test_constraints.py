"""constraints.txt holds the versions the suite passed with: every dependency and test extra of
pyproject.toml is pinned there within its range, and this environment runs exactly those pins."""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.server import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REQUIREMENTS = [Requirement(spec) for spec in [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["test"]]]


def pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pairs = [line.split("==", 1) for line in lines if line and not line.startswith("#")]
    assert all(len(pair) == 2 for pair in pairs), "constraints.txt holds only name==version lines"
    return {canonicalize_name(name): pinned.strip() for name, pinned in pairs}


def test_every_dependency_is_pinned_within_its_range() -> None:
    locked = pins()
    for requirement in REQUIREMENTS:
        name = canonicalize_name(requirement.name)
        if name == "torch":
            assert name not in locked  # pinned by the Makefile and the Dockerfile (a CPU or a CUDA build)
            continue
        assert name in locked, f"{requirement.name} is not in constraints.txt: run `make lock`"
        assert requirement.specifier.contains(locked[name], prereleases=True), (requirement, locked[name])


@pytest.mark.parametrize("requirement", [r for r in REQUIREMENTS if canonicalize_name(r.name) != "torch"], ids=str)
def test_this_environment_runs_the_pinned_version(requirement: Requirement) -> None:
    try:
        installed = version(requirement.name)
    except PackageNotFoundError:
        pytest.fail(f"{requirement.name} is not installed: `make install` installs from constraints.txt")
    assert installed == pins()[canonicalize_name(requirement.name)]


def test_the_installs_use_the_constraints() -> None:
    assert "-c constraints.txt" in (ROOT / "Makefile").read_text()
    assert "pip install -c constraints.txt" in (ROOT / "Dockerfile").read_text()
