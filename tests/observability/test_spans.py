"""Span records and their writers: the SDK's form of a record, and the batches sent to the export process."""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import SpanKind, StatusCode

from app.observability.spans import ERROR, SERVER, ExportProcessWriter, SpanRecord, to_readable


def test_a_record_becomes_an_sdk_span_with_its_links() -> None:
    record = SpanRecord(
        0xAB, 0x01, 0x99, "POST /v1/x", SERVER, 10, 50, {"a": 1}, ((0xCD, 0x02), (0xEF, 0x03)),
        status=ERROR, status_message="boom", remote_parent=True,
    )  # fmt: skip
    span = to_readable(record, Resource.create({"service.name": "svc"}))
    assert (span.context.trace_id, span.context.span_id, span.name) == (0xAB, 0x01, "POST /v1/x")
    assert span.parent is not None and (span.parent.span_id, span.parent.is_remote) == (0x99, True)
    assert [(link.context.trace_id, link.context.span_id) for link in span.links] == [(0xCD, 0x02), (0xEF, 0x03)]
    assert span.kind == SpanKind.SERVER and (span.start_time, span.end_time) == (10, 50)
    assert span.status.status_code == StatusCode.ERROR and span.status.description == "boom"


class _Pipe:
    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.closed = threading.Event()

    def send(self, message: Any) -> None:
        self.sent.append(message)
        if message is None:
            self.closed.set()


def test_the_writer_sends_plain_tuples_in_batches_and_drops_past_its_limit() -> None:
    pipe = _Pipe()
    writer = ExportProcessWriter(pipe, interval=60, batch=2, max_pending=3)
    records = [SpanRecord(1, i, 0, "x", SERVER, 1, 2, {}, ((1, 2),)) for i in range(1, 5)]
    writer.write(records[0])
    writer.write(records[1])  # a full batch wakes the thread
    writer.close()
    assert pipe.closed.is_set() and pipe.sent[-1] is None
    batches = pipe.sent[:-1]
    assert [len(batch) for batch in batches] == [2]
    assert all(type(r) is tuple for batch in batches for r in batch)  # a named tuple pickles slower
    assert [SpanRecord._make(r) for r in batches[0]] == records[:2]

    pipe = _Pipe()
    full = ExportProcessWriter(pipe, interval=60, batch=100, max_pending=3)  # the export process is behind
    for record in records:
        full.write(record)
    full.close()
    assert [SpanRecord._make(r) for r in pipe.sent[0]] == records[:3]  # the fourth was dropped
