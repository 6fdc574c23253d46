"""Token logprobs as the engine reports them → the two wire formats: chat's (chat completions and
responses) and legacy completions'."""

from __future__ import annotations

from app.engine.types import TokenEvent
from app.protocol.chat import TokenLogprob, TopLogprob
from app.protocol.completions import CompletionLogprobs


def token_logprobs(event: TokenEvent) -> list[TokenLogprob]:
    """The chat format: each token with its bytes and its top alternatives."""
    return [
        TokenLogprob(
            token=chosen.token,
            logprob=chosen.logprob,
            bytes=list(chosen.token.encode()),
            top_logprobs=[TopLogprob(token=t.token, logprob=t.logprob, bytes=list(t.token.encode())) for t in top],
        )
        for chosen, top in zip(event.logprobs, event.top_logprobs, strict=True)
    ]


def completion_logprobs(event: TokenEvent, offset: int) -> CompletionLogprobs:
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


def joined(parts: list[CompletionLogprobs]) -> CompletionLogprobs:
    """A completion's logprobs, from the parts of its steps."""
    return CompletionLogprobs(
        tokens=[t for part in parts for t in part.tokens],
        token_logprobs=[lp for part in parts for lp in part.token_logprobs],
        top_logprobs=[top for part in parts for top in part.top_logprobs],
        text_offset=[o for part in parts for o in part.text_offset],
    )
