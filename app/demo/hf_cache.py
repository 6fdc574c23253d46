"""Install a local model folder into a Hugging Face hub cache, like a real download would.

Layout written (the same as ``huggingface_hub`` produces)::

    <hf_home>/hub/models--{org}--{name}/blobs/<etag>
    <hf_home>/hub/models--{org}--{name}/snapshots/<commit>/<file> -> ../../blobs/<etag>
    <hf_home>/hub/models--{org}--{name}/refs/<ref>            (the commit, no newline)

The snapshot is assembled in a private temporary folder next to ``snapshots/`` and moved
into place with one ``rename``; the ref is written last (atomically), so a crash never
leaves a half-populated snapshot visible to ``from_pretrained`` or ``scan_cache_dir``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
import uuid
from pathlib import Path

# Files stored through Git LFS on the Hub use their sha256 as etag; others use the git blob sha1.
_LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".onnx", ".h5", ".msgpack")
_TMP_DIR = ".tmp-hfserve"


def hub_cache_dir(hf_home: Path) -> Path:
    """The ``hub`` cache folder inside an ``HF_HOME``."""
    return Path(hf_home) / "hub"


def repo_dir(hub_dir: Path, repo_id: str) -> Path:
    """Folder of a model repo (``models--org--name``) inside a hub cache folder."""
    return Path(hub_dir) / ("models--" + repo_id.replace("/", "--"))


def _etag(path: Path) -> str:
    data = path.read_bytes()
    if path.name.endswith(_LFS_SUFFIXES):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _source_files(src_dir: Path) -> list[Path]:
    files = sorted(p for p in src_dir.rglob("*") if p.is_file() and not p.is_symlink())
    if not files:
        raise ValueError(f"nothing to install in {src_dir}")
    return files


def commit_sha(src_dir: Path) -> str:
    """Deterministic 40-hex pseudo commit derived from the relative paths and contents."""
    digest = hashlib.sha1(b"hfserve-tiny-model\0")
    for path in _source_files(src_dir):
        digest.update(path.relative_to(src_dir).as_posix().encode() + b"\0" + _etag(path).encode() + b"\0")
    return digest.hexdigest()


def read_hub_ref(hub_dir: Path, repo_id: str, ref: str = "main") -> str | None:
    """Commit a ref points to, if its snapshot folder exists."""
    folder = repo_dir(hub_dir, repo_id)
    try:
        sha = (folder / "refs" / ref).read_text().strip()
    except OSError:
        return None
    return sha if sha and (folder / "snapshots" / sha).is_dir() else None


def _write_atomic(path: Path, data: bytes, tmp_dir: Path) -> None:
    tmp = tmp_dir / f"{path.name}.{uuid.uuid4().hex}"
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _remove_stale_staging(tmp_root: Path, max_age_s: float = 3600.0) -> None:
    """Delete leftovers of installs that crashed (an hour old; live installs take seconds)."""
    with contextlib.suppress(OSError):
        for entry in tmp_root.iterdir():
            with contextlib.suppress(OSError):
                if time.time() - entry.lstat().st_mtime <= max_age_s:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()


def install_into_hub(src_dir: Path, hub_dir: Path, repo_id: str, *, ref: str = "main") -> str:
    """Copy ``src_dir`` into the hub cache folder ``hub_dir`` (``$HF_HUB_CACHE``) as ``repo_id`` at ``ref``; return
    the commit sha. Installing identical contents again (even concurrently) is a no-op apart from the ref."""
    src_dir = Path(src_dir)
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"repo_id must look like 'org/name', got {repo_id!r}")
    sha = commit_sha(src_dir)
    repo = repo_dir(hub_dir, repo_id)
    blobs, snapshots = repo / "blobs", repo / "snapshots"
    for folder in (blobs, snapshots, repo / "refs"):
        folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(repo / _TMP_DIR)
    # Same depth as snapshots/<sha>/ so relative "../../blobs/..." links stay valid after rename.
    staging = repo / _TMP_DIR / uuid.uuid4().hex
    staging.mkdir(parents=True)
    try:
        if not (snapshots / sha).is_dir():
            for path in _source_files(src_dir):
                etag = _etag(path)
                blob = blobs / etag
                if not blob.exists():
                    tmp_blob = staging.parent / f"{etag}.{uuid.uuid4().hex}"
                    shutil.copyfile(path, tmp_blob)
                    os.replace(tmp_blob, blob)
                rel = path.relative_to(src_dir)
                link = staging / rel
                link.parent.mkdir(parents=True, exist_ok=True)
                try:
                    link.symlink_to(Path(*[".."] * (len(rel.parts) + 1), "blobs", etag))
                except OSError:  # no symlink support: plain copies are a valid cache too
                    shutil.copyfile(blob, link)
            try:
                staging.rename(snapshots / sha)
            except OSError:
                if not (snapshots / sha).is_dir():  # lost a race to an identical install: fine
                    raise
        ref_path = repo / "refs" / ref
        ref_path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(ref_path, sha.encode(), staging.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):  # other installs may be using it
            staging.parent.rmdir()
    return sha
