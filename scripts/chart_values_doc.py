#!/usr/bin/env python3
"""The values table of charts/hfserve/README.md, made from the `# --` comments of values.yaml.

    scripts/chart_values_doc.py           rewrite the table in the chart README
    scripts/chart_values_doc.py --check   exit 1 if the README's table is stale

helm-docs' convention: a key with a `# --` comment above it is documented, and the lines that follow
(`# ...`) continue its description; the keys below a documented key are part of its default value.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[1] / "charts" / "hfserve"
BEGIN, END = "<!-- values table: begin -->", "<!-- values table: end -->"
_KEY = re.compile(r"^(\s*)([A-Za-z][\w.-]*):(.*)$")


def documented_keys(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """(documented key path -> description, undocumented leaf key paths)."""
    documented: dict[str, str] = {}
    undocumented: list[str] = []
    stack: list[tuple[int, str, bool]] = []  # (indent, path, covered by a documented ancestor)
    comment: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped)
            continue
        match = _KEY.match(line)
        if not match:
            if not stripped:
                comment = []
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3).strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = f"{stack[-1][1]}.{key}" if stack else key
        covered = bool(stack) and stack[-1][2]
        start = next((i for i, c in enumerate(comment) if c.startswith("# --")), None)
        comment, description = [], _description(comment[start:]) if start is not None else None
        if not covered:
            if description is not None:
                documented[path] = description
            elif rest and not rest.startswith("#"):
                undocumented.append(path)
        stack.append((indent, path, covered or description is not None))
    return documented, undocumented


def _description(comment: list[str]) -> str:
    first = comment[0].removeprefix("# --").strip()
    rest = [c.removeprefix("#").strip() for c in comment[1:]]
    return " ".join([first, *rest]).strip()


def _lookup(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.split("."):
        node = node[part]
    return node


def _type(value: Any) -> str:
    names = {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def table() -> str:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    documented, _ = documented_keys(text.splitlines())
    rows = ["| Key | Type | Default | Description |", "|-----|------|---------|-------------|"]
    for path, description in documented.items():
        value = _lookup(values, path)
        default = json.dumps(value, separators=(",", ":")).replace("|", r"\|")
        described = description.replace("|", r"\|")
        rows.append(f"| {path} | {_type(value)} | `{default}` | {described} |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    readme = CHART / "README.md"
    current = readme.read_text()
    head, _, tail = current.partition(BEGIN)
    _, _, tail = tail.partition(END)
    wanted = f"{head}{BEGIN}\n{table()}\n{END}{tail}"
    if "--check" in argv:
        if wanted != current:
            print(f"{readme} is stale: run scripts/chart_values_doc.py", file=sys.stderr)
            return 1
        return 0
    readme.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
