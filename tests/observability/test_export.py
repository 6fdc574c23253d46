"""Span records to OTLP protobuf, as a collector decodes them."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from app.observability.export import encode
from app.observability.spans import ERROR, INTERNAL, SERVER, SpanRecord


def test_records_encode_to_otlp() -> None:
    server = SpanRecord(
        0xAB, 0x01, 0x99, "POST /v1/chat/completions", SERVER, 10, 50,
        {"http.response.status_code": 500, "gen_ai.response.finish_reasons": ["stop", "length"], "ok": False,
         "gen_ai.request.temperature": 0.5, "http.route": "/v1/chat/completions"},
        status=ERROR, status_message="engine_error", remote_parent=True,
    )  # fmt: skip
    step = SpanRecord(0xCD, 0x02, 0, "engine.step", INTERNAL, 20, 30, {"hfserve.step.batch_size": 2}, ((0xAB, 0x01),))
    request = ExportTraceServiceRequest.FromString(encode([server, step], {"service.name": "svc"}))
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
