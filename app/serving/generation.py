"""What every generating endpoint shares: the request fields that become sampling parameters, how an
engine outcome becomes usage, an error or a log line, and the logprob formats."""

from __future__ import annotations

import time

import structlog

from app.engine.types import FinishEvent, TokenEvent
from app.errors import EngineFailure, ServiceUnavailable
from app.observability.telemetry import outcome_fields
from app.protocol.chat import TokenLogprob, TopLogprob
from app.protocol.common import Usage
from app.protocol.completions import CompletionLogprobs

log = structlog.get_logger(__name__)

# Request fields that feed ``to_sampling_params`` under the same name on every endpoint.
SAMPLING_FIELDS = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "presence_penalty",
        "frequency_penalty",
        "repetition_penalty",
        "logit_bias",
        "stop",
        "seed",
        "generation_config",
        "n",
    }
)


def raise_for_finish(finish: FinishEvent) -> None:
    if finish.reason == "error":
        raise EngineFailure(f"Generation failed: {finish.error}")
    if finish.reason == "abort":
        raise ServiceUnavailable("The model stopped serving (shutting down or unloading); retry.")


def usage_of(finishes: dict[int, FinishEvent], prompt_tokens: int | None = None) -> Usage:
    prompt = prompt_tokens if prompt_tokens is not None else next(iter(finishes.values())).prompt_tokens
    completion = sum(f.completion_tokens for f in finishes.values())
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def log_outcome(
    request_id: str,
    model: str,
    choices: int,
    finishes: dict[int, FinishEvent],
    started: float,
    prompt_tokens: int | None = None,
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
        finish_reason=",".join(sorted({f.reason for f in finishes.values()})),
        n=choices,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        duration_ms=duration_ms,
        **outcome_fields(request_id),
    )
    for finish in finishes.values():
        raise_for_finish(finish)


def chat_logprobs(event: TokenEvent) -> list[TokenLogprob]:
    return [
        TokenLogprob(
            token=chosen.token,
            logprob=chosen.logprob,
            bytes=list(chosen.token.encode()),
            top_logprobs=[TopLogprob(token=t.token, logprob=t.logprob, bytes=list(t.token.encode())) for t in top],
        )
        for chosen, top in zip(event.logprobs, event.top_logprobs, strict=True)
    ]


def legacy_logprobs(event: TokenEvent, offset: int) -> CompletionLogprobs:
    """The completions format, with text offsets counted from ``offset``."""
    offsets = []
    for chosen in event.logprobs:
        offsets.append(offset)
        offset += len(chosen.token)
    return CompletionLogprobs(
        tokens=[chosen.token for chosen in event.logprobs],
        token_logprobs=[chosen.logprob for chosen in event.logprobs],
        top_logprobs=[{t.token: t.logprob for t in top} for top in event.top_logprobs],
        text_offset=offsets,
    )
