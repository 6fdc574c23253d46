#!/usr/bin/env bash
# Installs what the deployment tests need from Debian's archive: a Docker engine (docker.io),
# debootstrap (to make the local base image) and docker-compose (v1). Idempotent: it installs only
# what is missing. The engine itself is started and stopped by the tests (tests/support/docker_engine.py).
#
#   scripts/deploy-tools.sh          install what is missing (needs root or passwordless sudo)
#   scripts/deploy-tools.sh --check  only report what is missing; exit 1 if anything is
set -euo pipefail

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)

if [ ${#need[@]} -eq 0 ]; then
  echo "deploy-tools: dockerd, debootstrap and docker-compose are installed"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "deploy-tools: missing ${need[*]}"
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "deploy-tools: ${need[*]} missing and neither root nor passwordless sudo:" \
       "the container tests will skip" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "deploy-tools: ${need[*]} missing and no apt-get here: the container tests will skip" >&2
  exit 0
fi

echo "deploy-tools: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${need[@]}"
