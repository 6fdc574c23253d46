#!/usr/bin/env bash
# System packages the tests need: ffmpeg (audio/video decoding), espeak-ng (speech for the transcription
# tests) and redis-server (the shared response store; the tests start and stop their own servers, the
# package's own service is not used). Installs what is missing when run as root with apt-get available;
# otherwise says what is missing and carries on (media tests skip with a reason; Redis tests fail, unless
# HFSERVE_ALLOW_NO_REDIS=1).
set -euo pipefail

missing=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "test-deps: missing ${missing[*]} (install them with your package manager)" >&2
fi
