"""Tests proving that :mod:`tests.support.fake_hub` works with the real client libraries.

How to point clients at the fake hub
------------------------------------
huggingface_hub reads ``HF_ENDPOINT``, ``HF_HOME``/``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` into
module constants *at import time*, so ``monkeypatch.setenv`` is too late once it has been
imported anywhere in the pytest process. Two approaches are therefore used, and both are reliable:

* In-process: pass ``endpoint=hub.url`` and ``cache_dir=...`` explicitly (``snapshot_download``,
  ``hf_hub_download`` and ``HfApi`` accept both), and patch ``constants.HF_HUB_OFFLINE`` to
  ``False`` in case the session was started offline.
* Subprocess (for code that does not take an endpoint, such as ``transformers`` or the hfserve
  server itself): start it with ``env=hub.env(hf_home)``, which sets ``HF_ENDPOINT=hub.url`` and
  ``HF_HOME``, and removes offline flags, cache overrides and tokens inherited from the parent.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
from tqdm.auto import tqdm

from tests.support.fake_hub import FakeHub

REPO_ID = "org/tiny-gpt2"
CONFIG = {
    "model_type": "gpt2",
    "architectures": ["GPT2LMHeadModel"],
    "n_layer": 1,
    "n_head": 2,
    "n_embd": 8,
    "vocab_size": 10,
    "n_positions": 16,
}
WEIGHTS_SIZE = 1024 * 1024


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(CONFIG))
    (folder / "model.safetensors").write_bytes(os.urandom(WEIGHTS_SIZE))
    (folder / "sub" / "notes.txt").write_text("nested file\n")
    return folder


@pytest.fixture
def hub(repo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with FakeHub() as fake:
        fake.add_repo(REPO_ID, repo_dir)
        yield fake


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


class _NullWriter(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


class RecordingTqdm(tqdm):  # type: ignore[misc]
    """tqdm that writes nowhere and remembers every bar and every (n, total) it reached."""

    bars: list[RecordingTqdm] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["file"] = _NullWriter()
        self.init_desc = str(kwargs.get("desc", ""))
        self.history: list[tuple[float, float | None]] = []
        super().__init__(*args, **kwargs)
        RecordingTqdm.bars.append(self)

    def update(self, n: float | None = 1) -> bool | None:
        result = super().update(n)
        self.history.append((self.n, self.total))
        return result


@pytest.fixture
def recording_tqdm() -> Iterator[type[RecordingTqdm]]:
    RecordingTqdm.bars = []
    yield RecordingTqdm
    RecordingTqdm.bars = []


def test_snapshot_download_populates_cache_layout(hub: FakeHub, repo_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    sha = hub.add_repo(REPO_ID, repo_dir)  # same contents => same deterministic sha
    assert re.fullmatch("[0-9a-f]{40}", sha)

    path = Path(snapshot_download(REPO_ID, endpoint=hub.url, cache_dir=cache))

    storage = cache / "models--org--tiny-gpt2"
    assert path == storage / "snapshots" / sha
    assert (storage / "refs" / "main").read_text() == sha
    assert _files(path) == _files(repo_dir)
    # LFS-like files are stored under their sha256, regular files under their git blob id.
    blobs = {p.name for p in (storage / "blobs").iterdir()}
    assert len(blobs) == 3
    assert hashlib.sha256((repo_dir / "model.safetensors").read_bytes()).hexdigest() in blobs

    resolve = f"/{REPO_ID}/resolve/{sha}/"
    assert hub.requests[:2] == [
        ("GET", f"/api/models/{REPO_ID}/revision/main"),
        ("GET", f"/api/models/{REPO_ID}/tree/{sha}"),
    ]
    assert sorted(hub.requests[2:]) == sorted(
        (method, resolve + name) for method in ("HEAD", "GET") for name in _files(repo_dir)
    )

    # A second call is served from the cache: only the revision lookup hits the hub.
    hub.requests.clear()
    assert Path(snapshot_download(REPO_ID, endpoint=hub.url, cache_dir=cache)) == path
    assert hub.requests == [("GET", f"/api/models/{REPO_ID}/revision/main")]


def test_snapshot_download_progress_reaches_total(
    hub: FakeHub, repo_dir: Path, tmp_path: Path, recording_tqdm: type[RecordingTqdm]
) -> None:
    snapshot_download(REPO_ID, endpoint=hub.url, cache_dir=tmp_path / "cache", tqdm_class=recording_tqdm)

    total = sum(len(data) for data in _files(repo_dir).values())
    (bar,) = [b for b in recording_tqdm.bars if b.init_desc.startswith("Reconstructing")]
    assert bar.unit == "B"
    assert bar.n == bar.total == total
    assert bar.history[-1] == (total, total)


def test_slow_download_reports_intermediate_progress(
    repo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recording_tqdm: type[RecordingTqdm]
) -> None:
    # The client only reports progress every DOWNLOAD_CHUNK_SIZE bytes (10 MiB by default).
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with FakeHub(chunk_size=64 * 1024, chunk_delay=0.01) as slow_hub:
        slow_hub.add_repo(REPO_ID, repo_dir)
        started = time.monotonic()
        hf_hub_download(
            REPO_ID, "model.safetensors", endpoint=slow_hub.url, cache_dir=tmp_path / "cache", tqdm_class=recording_tqdm
        )
        elapsed = time.monotonic() - started

    (bar,) = recording_tqdm.bars
    assert bar.total == WEIGHTS_SIZE and bar.n == WEIGHTS_SIZE
    partial = [n for n, _ in bar.history if 0 < n < WEIGHTS_SIZE]
    assert len(partial) >= 8 and partial == sorted(partial)
    assert elapsed >= 15 * 0.01  # 16 chunks, a delay between each


def test_hf_hub_download_and_api(hub: FakeHub, repo_dir: Path, tmp_path: Path) -> None:
    path = hf_hub_download(REPO_ID, "sub/notes.txt", endpoint=hub.url, cache_dir=tmp_path / "cache")
    assert Path(path).read_text() == "nested file\n"

    api = HfApi(endpoint=hub.url)
    info = api.model_info(REPO_ID, files_metadata=True)
    assert info.id == REPO_ID and info.sha == hub.add_repo(REPO_ID, repo_dir)
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    assert sizes == {name: len(data) for name, data in _files(repo_dir).items()}
    top_level = {entry.path for entry in api.list_repo_tree(REPO_ID)}
    assert top_level == {"config.json", "model.safetensors", "sub"}
    assert [entry.path for entry in api.list_repo_tree(REPO_ID, "sub")] == ["sub/notes.txt"]


def test_second_revision_and_commit_lookup(hub: FakeHub, repo_dir: Path, tmp_path: Path) -> None:
    main_sha = hub.add_repo(REPO_ID, repo_dir)
    (repo_dir / "config.json").write_text(json.dumps({**CONFIG, "n_layer": 2}))
    v2_sha = hub.add_repo(REPO_ID, repo_dir, revision="v2")
    assert v2_sha != main_sha

    for revision, expected_layers in (("v2", 2), (main_sha, 1), ("main", 1)):
        path = hf_hub_download(
            REPO_ID, "config.json", revision=revision, endpoint=hub.url, cache_dir=tmp_path / "cache"
        )
        assert json.loads(Path(path).read_text())["n_layer"] == expected_layers


def test_errors_map_to_client_exceptions(hub: FakeHub, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("org/does-not-exist", endpoint=hub.url, cache_dir=cache)
    with pytest.raises(RevisionNotFoundError):
        snapshot_download(REPO_ID, revision="no-such-branch", endpoint=hub.url, cache_dir=cache)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(REPO_ID, "missing.bin", endpoint=hub.url, cache_dir=cache)
    # The hub's X-Repo-Commit on the 404 lets the client cache the file's absence.
    assert list((cache / "models--org--tiny-gpt2" / ".no_exist").glob("*/missing.bin"))


def test_resolve_headers_and_range(hub: FakeHub, repo_dir: Path) -> None:
    url = f"{hub.url}/{REPO_ID}/resolve/main/model.safetensors"
    with urllib.request.urlopen(urllib.request.Request(url, method="HEAD")) as response:
        headers = response.headers
    assert headers["X-Repo-Commit"] == hub.add_repo(REPO_ID, repo_dir)
    assert headers["Content-Length"] == headers["X-Linked-Size"] == str(WEIGHTS_SIZE)
    assert headers["ETag"].startswith('"') and not any(k.lower().startswith("x-xet") for k in headers)

    data = (repo_dir / "model.safetensors").read_bytes()
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=100-"})) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 100-{WEIGHTS_SIZE - 1}/{WEIGHTS_SIZE}"
        assert response.read() == data[100:]
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=-10"})) as response:
        assert response.read() == data[-10:]
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(urllib.request.Request(url, headers={"Range": f"bytes={WEIGHTS_SIZE}-"}))
    excinfo.value.close()
    assert excinfo.value.code == 416


def test_stop_aborts_idle_and_in_flight_connections(repo_dir: Path) -> None:
    hub = FakeHub(chunk_size=16 * 1024, chunk_delay=0.05).start()
    hub.add_repo(REPO_ID, repo_dir)
    port = int(hub.url.rsplit(":", 1)[1])
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    idle.request("GET", f"/api/models/{REPO_ID}")
    assert json.loads(idle.getresponse().read())["id"] == REPO_ID  # connection stays open (keep-alive)
    busy = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    busy.request("GET", f"/{REPO_ID}/resolve/main/model.safetensors")  # ~3 s at this pace
    response = busy.getresponse()
    assert len(response.read(16 * 1024)) == 16 * 1024

    started = time.monotonic()
    hub.stop()
    hub.stop()  # idempotent
    assert time.monotonic() - started < 2
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        response.read()
    with pytest.raises(RuntimeError):
        _ = hub.url
    idle.close()
    busy.close()


_SUBPROCESS_SCRIPT = """
import json
from transformers import AutoConfig
config = AutoConfig.from_pretrained("org/tiny-gpt2")
print(json.dumps({"model_type": config.model_type, "n_layer": config.n_layer}))
"""


def test_transformers_from_pretrained_in_subprocess(hub: FakeHub, repo_dir: Path, tmp_path: Path) -> None:
    hf_home = tmp_path / "hf_home"
    result = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS_SCRIPT],
        env=hub.env(hf_home),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"model_type": "gpt2", "n_layer": 1}

    sha = hub.add_repo(REPO_ID, repo_dir)
    snapshot = hf_home / "hub" / "models--org--tiny-gpt2" / "snapshots" / sha
    assert json.loads((snapshot / "config.json").read_text()) == CONFIG
    assert ("GET", f"/{REPO_ID}/resolve/{sha}/config.json") in hub.requests
