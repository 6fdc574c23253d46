"""The layering of docs/architecture.md and the lint rules hold mechanically."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_import_contracts_are_kept() -> None:
    result = run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_ruff_is_clean() -> None:
    result = run(str(BIN / "ruff"), "check", "app", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_modules_stay_small() -> None:
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in (ROOT / "app").rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > 400
    }
    assert not too_long, f"split these by role: {too_long}"


def test_the_package_never_imports_the_tests() -> None:
    """Test fixtures live under tests/; the shipped package (the demo builder included) never reaches them."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "app").rglob("*.py")
        if any(line.lstrip().startswith(("from tests", "import tests")) for line in path.read_text().splitlines())
    ]
    assert not offenders, offenders


def test_no_import_circle_anywhere_in_the_package() -> None:
    """Function-level imports count too: a circle cannot be hidden by importing late."""
    import grimp

    graph = grimp.build_graph("app", include_external_packages=False)
    circles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain is not None:
                circles.add(" -> ".join((module, *chain)))
    assert not circles, sorted(circles)
