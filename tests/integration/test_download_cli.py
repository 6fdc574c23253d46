"""``hfserve download`` and ``hfserve models`` as a user runs them (the Hub is the FakeHub double)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fixtures.tiny_models import CHAT_MODEL_ID, ENCODER_MODEL_ID, NEVER_EOS_MODEL_ID, UNSERVED_MODEL_ID
from tests.support.fake_hub import FakeHub
from tests.support.models import clone_hf_home, snapshot_path
from tests.support.server import ROOT, server_env


def hfserve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_download_fills_the_cache_with_a_progress_bar(hf_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with FakeHub() as hub:
        hub.add_repo("remote/fetch-me", snapshot_path(hf_home, NEVER_EOS_MODEL_ID))
        env = server_env(home, {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "NO_PROXY": "127.0.0.1"})
        done = hfserve("download", "remote/fetch-me", env=env)
        missing = hfserve("download", "nobody/nothing", env=env)
    assert done.returncode == 0, done.stderr
    snapshot = Path(done.stdout.strip().splitlines()[-1])
    assert snapshot.is_relative_to(home / "hub" / "models--remote--fetch-me" / "snapshots")
    source = snapshot_path(hf_home, NEVER_EOS_MODEL_ID)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (snapshot / name).read_bytes() == (source / name).read_bytes()
    assert "100%" in done.stderr  # the byte progress bar reached its end
    assert missing.returncode != 0 and "no model" in missing.stderr


def test_models_command_lists_the_cache(hf_home: Path, tmp_path: Path) -> None:
    home = clone_hf_home(hf_home, tmp_path / "home")
    listing = hfserve("models", env=server_env(home))
    assert listing.returncode == 0, listing.stderr
    rows = dict(line.split("\t") for line in listing.stdout.strip().splitlines())
    assert rows[CHAT_MODEL_ID] == rows[NEVER_EOS_MODEL_ID] == "text-generation"
    assert rows[ENCODER_MODEL_ID] == "embed"
    assert rows[UNSERVED_MODEL_ID] == "not served"
