"""Token logprobs as the engine reports them → the wire formats: chat's (chat completions and responses) and
legacy completions'; a prompt's logprobs → completions' echoed form and vLLM's ``prompt_logprobs``."""

from __future__ import annotations

from app.engine.types import PromptLogprob, TokenEvent
from app.protocol.chat import TokenLogprob, TopLogprob
from app.protocol.common import PromptLogprobs, PromptTokenLogprob
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


def prompt_completion_logprobs(prompt: tuple[PromptLogprob, ...], count: int) -> CompletionLogprobs:
    """An echoed prompt in the completions format: the first token's logprob and alternatives null (nothing
    comes before it); each later position's alternatives are its ``count`` most likely tokens and the prompt
    token itself. Text offsets count from 0, the start of the echoed text."""
    offsets, offset = [], 0
    for entry in prompt:
        offsets.append(offset)
        offset += len(entry.token)
    tops: list[dict[str, float] | None] = [None]
    for entry in prompt[1:]:
        top = {t.token: t.logprob for t in entry.top[:count]}
        top.setdefault(entry.token, entry.logprob)  # type: ignore[arg-type]
        tops.append(top)
    return CompletionLogprobs(
        tokens=[entry.token for entry in prompt],
        token_logprobs=[entry.logprob for entry in prompt],
        top_logprobs=tops,
        text_offset=offsets,
    )


def vllm_prompt_logprobs(prompt: tuple[PromptLogprob, ...], count: int) -> PromptLogprobs:
    """vLLM's ``prompt_logprobs``: None for the first token, then per position the prompt token and its ``count``
    most likely tokens, by token id, each with its logprob, rank and text."""
    positions: PromptLogprobs = [None]
    for entry in prompt[1:]:
        assert entry.logprob is not None and entry.rank is not None, "only the first prompt token is unscored"
        tokens = {
            str(entry.token_id): PromptTokenLogprob(logprob=entry.logprob, rank=entry.rank, decoded_token=entry.token)
        }
        for rank, top in enumerate(entry.top[:count], start=1):
            tokens.setdefault(
                str(top.token_id), PromptTokenLogprob(logprob=top.logprob, rank=rank, decoded_token=top.token)
            )
        positions.append(tokens)
    return positions
