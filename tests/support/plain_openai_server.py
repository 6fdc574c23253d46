"""A minimal OpenAI-compatible server on 127.0.0.1 (stdlib ``http.server`` in a thread) standing in for
the servers that are not hfserve: no ``/load_model``, reasoning under ``reasoning``, errors in their own
shapes. Each test scripts what ``/v1/chat/completions`` streams and reads back what it was sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Script:
    models: list[str] = field(default_factory=lambda: ["other/model"])
    frames: list[str] = field(default_factory=list)  # the ``data:`` payloads of a chat completion stream
    api_key: str | None = None
    received: list[dict[str, Any]] = field(default_factory=list)  # chat request bodies


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            if script.api_key is None or self.headers.get("Authorization") == f"Bearer {script.api_key}":
                return True
            self._json(401, {"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}})
            return False

        def do_GET(self) -> None:
            if self._authorized():
                self._json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in script.models]})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if self.path != "/v1/chat/completions":
                self._json(404, {"detail": "Not Found"})
                return
            if not self._authorized():
                return
            script.received.append(body)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for payload in [*script.frames, "[DONE]"]:
                self.wfile.write(f"data: {payload}\n\n".encode())
                self.wfile.flush()

    return Handler


@contextmanager
def plain_openai_server(script: Script) -> Iterator[str]:
    """Serves ``script`` until the block ends; yields its URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def chunk(**delta: Any) -> str:
    return json.dumps({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]})
