"""Reading request bodies into wire models, with OpenAI-shaped validation errors."""

from __future__ import annotations

from typing import TypeVar

import structlog
from litestar import Request
from pydantic import ValidationError

from app.errors import InvalidRequest
from app.observability.telemetry import phase
from app.protocol.common import WireRequest

log = structlog.get_logger(__name__)
RequestT = TypeVar("RequestT", bound=WireRequest)
_logged_unknown: set[tuple[str, str]] = set()
_TYPE_LABELS = frozenset({"str", "int", "float", "bool", "dict", "list", "none", "union_tag"})


def _param(loc: tuple[int | str, ...]) -> str | None:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif not parts:
            parts.append(item)
        elif item in _TYPE_LABELS or not item.isidentifier():
            continue  # pydantic's union branch labels ("str", "list[...]", "constrained-str") are not fields
        else:
            parts.append(f".{item}")
    return "".join(parts) or None


def validation_error(exc: ValidationError) -> InvalidRequest:
    errors = exc.errors(include_url=False)
    first = max(errors, key=lambda error: len(error["loc"]))  # the deepest: within a union, the branch that fit
    if first["type"] in ("json_invalid", "json_type"):
        return InvalidRequest(f"The request body is not valid JSON: {first['msg']}")
    param = _param(tuple(first["loc"]))
    return InvalidRequest(f"{param or 'body'}: {first['msg']}", param=param)


async def parse_body(request: Request, model: type[RequestT]) -> RequestT:
    body = await request.body()
    with phase("validate", {"http.request.body.size": len(body)}) as span:
        if not body.strip():
            raise InvalidRequest("The request body is empty; expected a JSON object.")
        try:
            parsed = model.model_validate_json(body)
        except ValidationError as exc:
            raise validation_error(exc) from exc
        if span is not None and isinstance(stream := getattr(parsed, "stream", None), bool):
            span.set_attribute("gen_ai.request.stream", stream)
    for name in parsed.model_extra or {}:
        if (model.__name__, name) not in _logged_unknown:
            _logged_unknown.add((model.__name__, name))
            log.info("unknown_request_field_ignored", request_type=model.__name__, field=name)
    return parsed
