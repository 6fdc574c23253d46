"""What an engine outcome becomes on every generating endpoint: usage, an error for the client, and one
log line per request."""

from __future__ import annotations

import time
from collections.abc import Sequence

import structlog

from app.engine.types import FinishEvent
from app.errors import EngineFailure, ServiceUnavailable
from app.observability.telemetry import outcome_fields
from app.protocol.common import CompletionTokensDetails, PromptTokensDetails, Usage

log = structlog.get_logger(__name__)


def raise_for_finish(finish: FinishEvent) -> None:
    if finish.reason == "error":
        raise EngineFailure(f"Generation failed: {finish.error}")
    if finish.reason == "abort":
        raise ServiceUnavailable("The model stopped serving (shutting down or unloading); retry.")


def usage_of(finishes: Sequence[FinishEvent], prompt_tokens: int, reasoning_tokens: int | None = None) -> Usage:
    completion = sum(f.completion_tokens for f in finishes)
    details = None if reasoning_tokens is None else CompletionTokensDetails(reasoning_tokens=reasoning_tokens)
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion,
        total_tokens=prompt_tokens + completion,
        completion_tokens_details=details,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=cached_tokens(finishes)),
    )


def cached_tokens(finishes: Sequence[FinishEvent]) -> int:
    """Prompt tokens found in the prefix cache, once per prompt (its choices share them)."""
    return sum({finish.request_id: finish.cached_tokens for finish in finishes}.values())


def log_outcome(
    request_id: str,
    model: str,
    choices: int,
    finishes: Sequence[FinishEvent],
    started: float,
    prompt_tokens: int,
) -> None:
    """One line per request; then an engine failure becomes an error for the client."""
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    if len(finishes) < choices:
        log.info("request_aborted", request_id=request_id, model=model, duration_ms=duration_ms)
        return
    usage = usage_of(finishes, prompt_tokens)
    log.info(
        "request_finished",
        request_id=request_id,
        model=model,
        finish_reason=",".join(sorted({f.reason for f in finishes})),
        n=choices,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        duration_ms=duration_ms,
        **outcome_fields(request_id),
    )
    for finish in finishes:
        raise_for_finish(finish)
