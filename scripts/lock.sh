#!/usr/bin/env bash
# Refresh constraints.txt: resolve pyproject.toml's ranges (with the test extras) afresh in a throwaway
# virtualenv, and write down every version pip chose. `make run`, `make test` and the Dockerfile install
# from that file, so every machine runs what the suite last passed with; run `make test` after refreshing.
# torch is left out: the Makefile and the Dockerfile pin it themselves (a CPU or a CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH="${TORCH:-torch==2.13.0}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --upgrade pip
"$tmp/venv/bin/python" -m pip install -q "$TORCH"
"$tmp/venv/bin/python" -m pip install -q -e ".[test]"
{
  echo "# Every version the suite passed with. Refresh with \`make lock\` (scripts/lock.sh), then run \`make test\`."
  echo "# Installs use it as pip constraints (-c): \`pip install hfserve\` elsewhere keeps pyproject.toml's ranges."
  "$tmp/venv/bin/python" -m pip freeze --exclude-editable | grep -v -E '^(torch|hfserve)==| @ ' | LC_ALL=C sort -f
} > constraints.txt
echo "constraints.txt: $(grep -c '==' constraints.txt) pinned versions"
