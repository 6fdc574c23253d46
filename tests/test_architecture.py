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
        if any(
            line.lstrip().startswith(("from tests", "import tests")) for line in path.read_text().splitlines()
        )
    ]
    assert not offenders, offenders
