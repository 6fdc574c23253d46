"""What the engine accepts: its limits, and the checks a request passes before it is queued."""

from __future__ import annotations

from dataclasses import dataclass

from app.engine.types import GenerationRequest
from app.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_batch_size: int = 32  # rows (choices) decoded together
    max_num_batched_tokens: int = 2048  # prompt tokens prefilled per step
    max_kv_tokens: int | None = None  # rows x cache width the running batch may hold
    max_queue: int = 256  # requests admitted but not yet running
    stream_interval: float = 0.0  # seconds between deliveries to the event loop (0: every step)


def check_request(request: GenerationRequest, *, vocab_size: int, max_rows: int, limits: BatchLimits) -> None:
    """What a request must satisfy before it is queued (raised on the event loop, before any response)."""
    params = request.params
    if params.n > max_rows:
        raise InvalidRequest(f"n may be at most {max_rows} for this model.", param="n")
    if not request.prompt_ids:
        raise InvalidRequest("The prompt is empty.", param="prompt")
    if not 0 <= min(request.prompt_ids) <= max(request.prompt_ids) < vocab_size:
        raise InvalidRequest(f"Token ids must lie in [0, {vocab_size}).", param="prompt")
    budget = limits.max_kv_tokens
    if budget is not None and params.n * (len(request.prompt_ids) + params.max_tokens) > budget:
        raise InvalidRequest(
            f"This request needs {params.n} x {len(request.prompt_ids) + params.max_tokens} KV tokens; the "
            f"server's budget (--max-kv-tokens) is {budget}. Lower max_tokens, n or the prompt.",
            param="max_tokens",
        )
