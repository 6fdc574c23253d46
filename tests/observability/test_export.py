"""Span records to OTLP protobuf, as a collector decodes them."""

from __future__ import annotations

import enum

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from app.observability.export import SpanEncoder
from app.observability.spans import ERROR, INTERNAL, SERVER, SpanRecord


def encode(records: list[SpanRecord], encoder: SpanEncoder | None = None) -> ExportTraceServiceRequest:
    encoder = encoder or SpanEncoder({"service.name": "svc"})
    return ExportTraceServiceRequest.FromString(encoder.encode(records))


def test_records_encode_to_otlp() -> None:
    server = SpanRecord(
        0xAB, 0x01, 0x99, "POST /v1/chat/completions", SERVER, 10, 50,
        {"http.response.status_code": 500, "gen_ai.response.finish_reasons": ["stop", "length"], "ok": False,
         "gen_ai.request.temperature": 0.5, "http.route": "/v1/chat/completions"},
        status=ERROR, status_message="engine_error", remote_parent=True,
    )  # fmt: skip
    step = SpanRecord(0xCD, 0x02, 0, "engine.step", INTERNAL, 20, 30, {"hfserve.step.batch_size": 2}, ((0xAB, 0x01),))
    request = encode([server, step])
    [resource_spans] = request.resource_spans
    assert [(a.key, a.value.string_value) for a in resource_spans.resource.attributes] == [("service.name", "svc")]
    [scope_spans] = resource_spans.scope_spans
    assert scope_spans.scope.name == "hfserve"
    first, second = scope_spans.spans
    assert first.trace_id == (0xAB).to_bytes(16, "big") and first.span_id == (1).to_bytes(8, "big")
    assert first.parent_span_id == (0x99).to_bytes(8, "big") and first.kind == Span.SPAN_KIND_SERVER
    assert (first.start_time_unix_nano, first.end_time_unix_nano) == (10, 50)
    assert first.status.code == Status.STATUS_CODE_ERROR and first.status.message == "engine_error"
    values = {a.key: a.value for a in first.attributes}
    assert values["http.response.status_code"].int_value == 500
    assert [v.string_value for v in values["gen_ai.response.finish_reasons"].array_value.values] == ["stop", "length"]
    assert values["ok"].HasField("bool_value") and values["gen_ai.request.temperature"].double_value == 0.5
    assert second.parent_span_id == b"" and second.kind == Span.SPAN_KIND_INTERNAL
    [link] = second.links
    assert (link.trace_id, link.span_id) == ((0xAB).to_bytes(16, "big"), (1).to_bytes(8, "big"))


class Kind(enum.StrEnum):
    CHAT = "chat"


def _reference(record: SpanRecord) -> Span:
    """The span built field by field from messages, as the OTLP protobuf schema describes it."""

    def value(v: object) -> AnyValue:
        if isinstance(v, str):
            return AnyValue(string_value=v)
        if isinstance(v, bool):
            return AnyValue(bool_value=v)
        if isinstance(v, int):
            return AnyValue(int_value=v)
        if isinstance(v, float):
            return AnyValue(double_value=v)
        return AnyValue(array_value=ArrayValue(values=[value(x) for x in v]))  # type: ignore[attr-defined]

    return Span(
        trace_id=record.trace_id.to_bytes(16, "big"),
        span_id=record.span_id.to_bytes(8, "big"),
        parent_span_id=record.parent_id.to_bytes(8, "big") if record.parent_id else b"",
        name=record.name,
        kind=record.kind + 1,
        start_time_unix_nano=record.start,
        end_time_unix_nano=record.end,
        attributes=[KeyValue(key=k, value=value(v)) for k, v in record.attributes.items() if v is not None],
        links=[Span.Link(trace_id=t.to_bytes(16, "big"), span_id=s.to_bytes(8, "big")) for t, s in record.links],
        status=Status(code=record.status, message=record.status_message or ""),  # type: ignore[arg-type]
        flags=0x100 | 0x200 * record.remote_parent | 0x01,
    )


def test_repeated_attribute_values_and_links_encode_like_fresh_ones() -> None:
    """Attribute and link messages are reused from span to span and batch to batch; values equal in Python
    but not on the wire (1, 1.0, True) stay apart, and nothing of one span leaks into the next."""
    links = ((0xAB, 0x01), (0xCD, 0x02))
    records = [
        SpanRecord(0x1, 0x10, 0, "engine.step", INTERNAL, 1, 2, {"n": 1, "model": "m"}, links),
        SpanRecord(0x2, 0x20, 0, "engine.step", INTERNAL, 2, 3, {"n": 1.0, "model": "m"}, ((0xAB, 0x01),)),
        SpanRecord(0x3, 0x30, 0x3, "decode", INTERNAL, 3, 4, {"n": True, "skip": None, "list": ["a", 1]}),
        SpanRecord(0x4, 0x40, 0, "POST /v1/x", SERVER, 4, 5, {"n": 1}, status=ERROR, status_message="boom"),
        SpanRecord(
            0x5,
            0x50,
            0x5,
            "é" * 70,
            INTERNAL,
            5,
            2**63,
            {
                "neg": -3,
                "zero": 0,
                "big": 2**62,
                "empty": "",
                "no": False,
                "z": 0.0,
                "kind": Kind.CHAT,
                "none": [],
                "ids": ("a", "é" * 200),
            },
            remote_parent=True,
        ),
        SpanRecord(0x6, 0x60, 0, "x", INTERNAL, 6, 7, {}, status=ERROR),
    ]
    encoder = SpanEncoder({"service.name": "svc"})
    for _ in range(2):  # the second time, every attribute and link comes from the cache
        request = encode(records, encoder)
        spans = list(request.resource_spans[0].scope_spans[0].spans)
        assert spans == [_reference(r) for r in records]


def test_the_caches_stay_bounded() -> None:
    encoder = SpanEncoder({}, limit=4)
    records = [
        SpanRecord(0x1, i, 0, "queue", INTERNAL, 1, 2, {"hfserve.engine_request_id": f"req-{i}"}, ((i, i),))
        for i in range(1, 11)
    ]
    spans = encode(records, encoder).resource_spans[0].scope_spans[0].spans
    assert len(encoder._attributes) <= 4 and len(encoder._links) <= 4
    assert [span.attributes[0].value.string_value for span in spans] == [f"req-{i}" for i in range(1, 11)]
    assert [span.links[0].span_id for span in spans] == [i.to_bytes(8, "big") for i in range(1, 11)]


def test_values_of_other_types_are_written_as_their_string() -> None:
    """Attributes should be strings, numbers, booleans or sequences of them; anything else set by mistake
    (here a dict, which can't be a cache key either, and an int past int64) is written as its string, not a
    failed batch."""
    record = SpanRecord(0x7, 0x70, 0, "x", INTERNAL, 1, 2, {"odd": {"a": 1}, "n": 1, "huge": 2**64})
    encoder = SpanEncoder({"service.name": "svc"})
    for _ in range(2):
        request = encode([record], encoder)
        [span] = request.resource_spans[0].scope_spans[0].spans
        values = {a.key: a.value for a in span.attributes}
        assert values["odd"].string_value == "{'a': 1}" and values["n"].int_value == 1
        assert values["huge"].string_value == str(2**64)  # past int64
