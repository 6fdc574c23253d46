"""A collector stand-in for the benchmark: accepts OTLP/HTTP trace exports on 127.0.0.1 and counts them.

A real collector runs on cores of its own (a sidecar or another machine). This one shares the benchmark's
machine, so while load runs it only keeps each body; ``counts()`` decodes them all afterwards, so the span
count it reports is real but decoding does not take CPU from the server being measured.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class OtlpSink:
    def __init__(self) -> None:
        self._bodies: list[bytes] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the exporter's session expects

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink._lock:
                    sink._bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> OtlpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def counts(self) -> dict[str, int]:
        """Exports, spans (each body decoded, as a collector would) and bytes received so far."""
        with self._lock:
            bodies = list(self._bodies)
        spans = 0
        for body in bodies:
            request = ExportTraceServiceRequest.FromString(body)
            spans += sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        return {"exports": len(bodies), "spans": spans, "bytes": sum(map(len, bodies))}
