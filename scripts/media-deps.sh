#!/usr/bin/env bash
# System packages the media features and their tests need: ffmpeg (audio/video decoding) and
# espeak-ng (speech for the transcription tests). Installs what is missing when run as root with
# apt-get available; otherwise says what is missing and carries on (the tests that need them skip
# with a reason).
set -euo pipefail

missing=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "media-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "media-deps: missing ${missing[*]} (install them with your package manager); media tests will skip" >&2
fi
