"""Test double for the Hugging Face Hub HTTP API: the real Hub cannot be reached from the tests.

It serves in-memory model repos over plain HTTP on 127.0.0.1, so the real clients (``snapshot_download``,
``hf_hub_download``, ``transformers`` ``from_pretrained``) do genuine downloads when pointed at it with
``HF_ENDPOINT=<hub.url>`` (see :meth:`FakeHub.env`). Routes (all that huggingface_hub 2.4 requests here):

* ``GET /api/models/{repo}[/revision/{rev}]``: ``id``, ``sha``, ``siblings`` (sizes with ``?blobs=true``).
* ``GET /api/models/{repo}/tree/{rev}[/{path}]``: tree listing (``?recursive=true``), a single page.
* ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: quoted ``ETag``, ``X-Repo-Commit``, ``Content-Length``
  (plus ``X-Linked-Etag``/``X-Linked-Size`` for LFS files) and the bytes, honouring a single ``Range``.
  Files are served directly (no CDN redirect) and no ``X-Xet-*`` header is sent, so plain HTTP is used.

Errors carry the Hub's ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) so the client
raises its usual exceptions. Files with a suffix in ``LFS_SUFFIXES`` act as Git LFS files (ETag and cache blob
name = sha256); others use their git blob sha1.

``chunk_size``/``chunk_delay`` slow bodies down so a download can be observed in flight. The client reads bodies in
``huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE`` (10 MiB) pieces, so its progress callbacks only fire at that
granularity unless that constant is lowered in the client process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack", ".onnx"})

_REPO = r"(?P<repo>[^/]+(?:/[^/]+)?)"
_INFO_RE = re.compile(rf"^/api/models/{_REPO}(?:/revision/(?P<rev>[^/]+))?$")
_TREE_RE = re.compile(rf"^/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")
_RESOLVE_RE = re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_ENV_TO_CLEAR = (  # inherited settings that would bypass the fake hub or its temporary HF_HOME
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "TRANSFORMERS_CACHE",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH",
)


@dataclass(frozen=True)
class _File:
    path: str
    data: bytes
    git_oid: str  # git blob sha1
    sha256: str
    lfs: bool


class _HubError(Exception):
    def __init__(self, code: str, message: str, commit: str | None = None, status: int = 404) -> None:
        super().__init__(message)
        self.code, self.message, self.commit, self.status = code, message, commit, status  # commit: X-Repo-Commit


class FakeHub:
    """Serves model repos over HTTP on 127.0.0.1; use as ``with FakeHub() as hub: ...``."""

    def __init__(self, *, chunk_size: int = 64 * 1024, chunk_delay: float = 0.0) -> None:
        if chunk_size <= 0 or chunk_delay < 0:
            raise ValueError("chunk_size must be > 0 and chunk_delay >= 0")
        self.chunk_size, self.chunk_delay = chunk_size, chunk_delay  # body pacing, see the module docstring
        self.requests: list[tuple[str, str]] = []  # (method, raw path without query), in arrival order
        self._refs: dict[str, dict[str, str]] = {}  # repo_id -> {revision name: commit sha}
        self._commits: dict[str, dict[str, dict[str, _File]]] = {}  # repo_id -> {sha: {path: file}}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None  # runs serve_forever()

    def add_repo(self, repo_id: str, folder: Path, *, revision: str = "main") -> str:
        """Serve a snapshot of ``folder`` as ``revision`` of ``repo_id``; return its commit sha (derived from the
        repo id and file contents). Re-adding moves ``revision``; older commits stay reachable by sha."""
        files: dict[str, _File] = {}
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file():
                rel, data = p.relative_to(folder).as_posix(), p.read_bytes()
                git_oid = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
                files[rel] = _File(rel, data, git_oid, hashlib.sha256(data).hexdigest(), p.suffix in LFS_SUFFIXES)
        if not files:
            raise ValueError(f"{folder} contains no files")
        tree = "".join(f"{f.path}\0{f.sha256}\n" for f in files.values())
        sha = hashlib.sha1(f"{repo_id}\n{tree}".encode()).hexdigest()
        with self._lock:
            self._refs.setdefault(repo_id, {})[revision] = sha
            self._commits.setdefault(repo_id, {})[sha] = files
        return sha

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeHub is not running; call start() first")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeHub:
        if self._server is not None:
            raise RuntimeError("FakeHub already started")
        # bind() and listen() happen in the constructor: connections queue in the backlog from here on.
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def env(self, hf_home: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default ``os.environ``) for a subprocess downloading from this hub into ``hf_home``: sets
        ``HF_ENDPOINT`` and ``HF_HOME``, drops offline flags, cache-location overrides and tokens."""
        env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _ENV_TO_CLEAR}
        env.update(HF_ENDPOINT=self.url, HF_HOME=str(hf_home), HF_HUB_DISABLE_TELEMETRY="1")
        env["NO_PROXY"] = env["no_proxy"] = ",".join(filter(None, [env.get("NO_PROXY", ""), "127.0.0.1"]))
        return env

    def _resolve(self, repo_id: str, revision: str | None) -> tuple[str, dict[str, _File]]:
        with self._lock:
            refs, commits = self._refs.get(repo_id), self._commits.get(repo_id, {})
            if refs is None:
                raise _HubError("RepoNotFound", f"Repository {repo_id} not found")
            rev = unquote(revision) if revision is not None else ("main" if "main" in refs else next(iter(refs)))
            sha = rev if rev in commits else refs.get(rev)
            if sha is None:
                raise _HubError("RevisionNotFound", f"Invalid rev id: {rev}")
            return sha, commits[sha]

    def _handle(self, h: _Handler) -> None:
        method, split = h.command, urlsplit(h.path)
        path, query = split.path, parse_qs(split.query)
        with self._lock:
            self.requests.append((method, path))
        try:
            if method not in ("GET", "HEAD"):
                h.close_connection = True  # the request body (if any) is left unread
                raise _HubError("MethodNotAllowed", f"{method} is not supported", status=405)
            if m := _RESOLVE_RE.match(path):
                self._serve_file(h, m["repo"], m["rev"], unquote(m["path"]))
            elif m := _TREE_RE.match(path):
                sha, files = self._resolve(m["repo"], m["rev"])
                recursive = query.get("recursive", [""])[0].lower() in ("1", "true")
                h.reply_json(_tree(files, unquote(m["path"] or "").strip("/"), recursive, sha))
            elif m := _INFO_RE.match(path):
                h.reply_json(self._info(m["repo"], m["rev"], query.get("blobs", [""])[0].lower() == "true"))
            else:
                raise _HubError("NotFound", f"No route for {method} {path}")
        except _HubError as e:
            headers = {"X-Error-Code": e.code, "X-Error-Message": e.message}
            if e.commit:
                headers["X-Repo-Commit"] = e.commit
            h.reply(e.status, json.dumps({"error": e.message}).encode(), headers, "application/json")

    def _info(self, repo_id: str, revision: str | None, blobs: bool) -> dict[str, Any]:
        sha, files = self._resolve(repo_id, revision)
        siblings: list[dict[str, Any]] = [{"rfilename": f.path} for f in files.values()]
        if blobs:
            for sibling, f in zip(siblings, files.values(), strict=True):
                lfs = {"size": len(f.data), "sha256": f.sha256, "pointerSize": 134} if f.lfs else None
                sibling.update(size=len(f.data), blobId=f.git_oid, lfs=lfs)
        return {
            "_id": sha[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.partition("/")[0],
            "sha": sha,
            "lastModified": "2024-01-01T00:00:00.000Z",
            "private": False,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }

    def _serve_file(self, h: _Handler, repo_id: str, revision: str, path: str) -> None:
        sha, files = self._resolve(repo_id, revision)
        if (f := files.get(path)) is None:
            raise _HubError("EntryNotFound", f'{path} does not exist on "{unquote(revision)}"', commit=sha)
        size = len(f.data)
        headers = {"ETag": f'"{f.sha256 if f.lfs else f.git_oid}"', "X-Repo-Commit": sha, "Accept-Ranges": "bytes"}
        if f.lfs:
            headers.update({"X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(size)})
        start, end, status = 0, size, 200
        m = _RANGE_RE.match(h.headers.get("Range", "").strip())  # malformed ranges are ignored (RFC 9110)
        if h.command == "GET" and m and (m[1] or m[2]):
            if m[1]:
                start, end = int(m[1]), min(int(m[2]) + 1, size) if m[2] else size
            else:
                start = max(size - int(m[2]), 0)
            if start >= end:
                h.reply(416, b"", {**headers, "Content-Range": f"bytes */{size}"})
                return
            status, headers["Content-Range"] = 206, f"bytes {start}-{end - 1}/{size}"
        h.send_headers(status, end - start, {**headers, "Content-Type": "application/octet-stream"})
        if h.command == "HEAD":
            return
        for offset in range(start, end, self.chunk_size):
            h.wfile.write(f.data[offset : min(offset + self.chunk_size, end)])
            h.wfile.flush()
            if self.chunk_delay and offset + self.chunk_size < end:
                time.sleep(self.chunk_delay)


def _tree(files: Mapping[str, _File], prefix: str, recursive: bool, sha: str) -> list[dict[str, Any]]:
    """Entries under ``prefix`` (all levels, or only direct children), folders first, like the Hub."""
    base = f"{prefix}/" if prefix else ""
    below = [f for f in files.values() if f.path.startswith(base)]
    if not below:
        raise _HubError("EntryNotFound", f"{prefix} does not exist", commit=sha)
    dirs: set[str] = set()
    entries: list[dict[str, Any]] = []
    for f in below:
        parts = f.path[len(base) :].split("/")
        depths = range(1, len(parts) if recursive else min(len(parts), 2))
        dirs.update(base + "/".join(parts[:depth]) for depth in depths)
        if recursive or len(parts) == 1:
            entry: dict[str, Any] = {"type": "file", "oid": f.git_oid, "size": len(f.data), "path": f.path}
            if f.lfs:
                entry["lfs"] = {"oid": f.sha256, "size": len(f.data), "pointerSize": 134}
            entries.append(entry)
    folder_oids = {d: hashlib.sha1(f"{sha}:{d}".encode()).hexdigest() for d in sorted(dirs)}
    return [{"type": "directory", "oid": oid, "size": 0, "path": d} for d, oid in folder_oids.items()] + entries


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real Hub; every response sets Content-Length
    timeout = 60  # idle keep-alive connections are dropped eventually
    server: _Server

    def do_GET(self) -> None:
        self.server.hub._handle(self)

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET  # all are logged; writes get 405

    def send_headers(self, status: int, length: int, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(length)}.items():
            self.send_header(name, value)
        self.end_headers()

    def reply(self, status: int, body: bytes, headers: Mapping[str, str], ctype: str = "text/plain") -> None:
        self.send_headers(status, len(body), {**headers, "Content-Type": ctype})
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, payload: Any) -> None:
        self.reply(200, json.dumps(payload).encode(), {}, "application/json")

    def log_message(self, format: str, *args: Any) -> None:  # no access log on stderr
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hub: FakeHub) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hub = hub
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def server_bind(self) -> None:  # like HTTPServer.server_bind, minus its reverse-DNS lookup of the address
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Abort keep-alive and in-flight connections so handler threads exit promptly."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:  # traceback unless the client went away
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)
