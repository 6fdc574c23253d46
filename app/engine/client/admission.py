"""What the engine accepts: the checks a request passes before it is sent to the engine process.

They run once per request, on the event loop, before anything is streamed: a refused request costs the
engine process nothing. What no wait could change is a 400 naming why; only a full waiting line, which
drains, is a 429 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.engine.options import BatchLimits
from app.engine.types import GenerationRequest, PoolingRequest
from app.errors import InvalidRequest, Overloaded


def admit(
    request: GenerationRequest,
    *,
    vocab_size: int,
    max_rows: int,
    limits: BatchLimits,
    waiting: int,
    kv_blocks: tuple[int, int] = (0, 0),
) -> None:
    """Raise unless ``request`` may join the waiting line (``waiting`` requests are already in it). ``kv_blocks``:
    the paged pool's blocks and block size (0, 0 for a model whose cache is not paged)."""
    params = request.params
    if params.n > max_rows:
        raise InvalidRequest(f"n may be at most {max_rows} for this model.", param="n")
    if not request.prompt_ids:
        raise InvalidRequest("The prompt is empty.", param="prompt")
    if not 0 <= min(request.prompt_ids) <= max(request.prompt_ids) < vocab_size:
        raise InvalidRequest(f"Token ids must lie in [0, {vocab_size}).", param="prompt")
    if kv_blocks[0]:
        _fits_pool(request, *kv_blocks)
    elif (budget := limits.max_kv_tokens) is not None and params.n * (
        len(request.prompt_ids) + params.max_tokens
    ) > budget:
        raise InvalidRequest(
            f"This request needs {params.n} x {len(request.prompt_ids) + params.max_tokens} KV tokens; the "
            f"server's budget (--max-kv-tokens) is {budget}. Lower max_tokens, n or the prompt.",
            param="max_tokens",
        )
    if request.group > limits.max_queue:
        raise InvalidRequest(
            f"This request holds {request.group} prompts, and this model's waiting line takes at most "
            f"{limits.max_queue} (--max-queue): it could never be admitted. Send fewer prompts per request.",
            param="prompt",
        )
    if waiting >= limits.max_queue:  # transient: the line drains as requests start
        raise Overloaded("Too many requests are waiting for this model; retry shortly.")


def admit_pooling(requests: Sequence[PoolingRequest], *, vocab_size: int, limits: BatchLimits, waiting: int) -> None:
    """Raise unless the inputs of one embed, rerank or score request may join the pooling engine's line
    (``waiting`` such requests are already in it)."""
    for index, request in enumerate(requests):
        if not request.prompt_ids:
            raise InvalidRequest(f"Input {index} is empty.", param="input")
        if not 0 <= min(request.prompt_ids) <= max(request.prompt_ids) < vocab_size:
            raise InvalidRequest(f"Token ids of input {index} must lie in [0, {vocab_size}).", param="input")
    if waiting >= limits.max_queue:
        raise Overloaded("Too many requests are waiting for this model; retry shortly.")


def _fits_pool(request: GenerationRequest, blocks: int, size: int) -> None:
    """The request could run alone in the paged pool: its prompt's full blocks (shared by its choices), then each
    choice's own copy of the partial last block and the blocks its output fills."""
    params, prompt = request.params, len(request.prompt_ids)
    need = prompt // size + params.n * -(-(prompt % size + params.max_tokens) // size)
    if need > blocks:
        raise InvalidRequest(
            f"This request needs {need} KV blocks of {size} tokens (prompt {prompt}, max_tokens {params.max_tokens}, "
            f"n {params.n}); the server's KV cache (--max-kv-tokens) holds {blocks}. "
            "Lower max_tokens, n or the prompt.",
            param="max_tokens",
        )
