"""The one path of the pooling endpoints (embeddings, rerank, score): lease an embed or score model, tokenize
off the loop within its length limit, send every input to its engine in one admission, and log the outcome.

An endpoint hands over how its inputs become token ids (``Encode``: texts, token arrays or text pairs, given the
model's tokenizer and the length to cut them to) and gets back the results in input order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import structlog

from app.engine.types import ModelInfo, PairTokenizer, PoolingClient, PoolingRequest, PoolingResult, ServingModel
from app.errors import EngineFailure, InvalidRequest, PromptTooLong
from app.models.registry import ModelRegistry
from app.observability.telemetry import outcome_fields, phase

log = structlog.get_logger(__name__)

EMBED_TASK = "embed"
SCORE_TASK = "score"
_ENDPOINTS = {EMBED_TASK: "/v1/embeddings", SCORE_TASK: "/v1/rerank and /v1/score"}
_NEEDS = {EMBED_TASK: "an embedding model", SCORE_TASK: "a cross-encoder (a sequence classifier with one label)"}

# (token ids, token type ids or None) per input
Encoded = tuple[list[int], list[int] | None]
Encode = Callable[[PairTokenizer, int | None], list[Encoded]]


def refuse_pooling_model(info: ModelInfo) -> None:
    """For the generating endpoints: an embed or score model generates nothing."""
    if info.task in _ENDPOINTS:
        raise InvalidRequest(
            f"`{info.name}` is a {info.task} model: it serves {_ENDPOINTS[info.task]}, not text generation.",
            param="model",
        )


@dataclass(frozen=True, slots=True)
class PooledOutput:
    model: str  # canonical name echoed in responses
    info: ModelInfo
    results: list[PoolingResult]  # in input order

    @property
    def prompt_tokens(self) -> int:
        return sum(result.prompt_tokens for result in self.results)


def length_limit(info: ModelInfo, truncate: int | None) -> int | None:
    """The length inputs are cut to: None (not cut: too long is an error), the model's maximum (-1), or k."""
    if truncate is None:
        return None
    if truncate == 0:
        raise InvalidRequest("truncate_prompt_tokens must be -1 or at least 1.", param="truncate_prompt_tokens")
    if truncate > info.max_context:
        raise InvalidRequest(
            f"truncate_prompt_tokens ({truncate}) exceeds the model's maximum input length ({info.max_context}).",
            param="truncate_prompt_tokens",
        )
    return info.max_context if truncate == -1 else truncate


class PoolingRunner:
    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry

    async def run(
        self,
        request_id: str,
        model_name: str | None,
        task: str,
        encode: Encode,
        *,
        param: str,
        truncate: int | None = None,
        check: Callable[[ModelInfo], None] | None = None,
    ) -> PooledOutput:
        """Every input's result; ``check`` sees the model before anything is tokenized. Errors (a model of another
        task, an input too long, a full queue) are raised before the engine sees anything."""
        started = time.monotonic()
        ref = self._registry.resolve(model_name)
        async with self._registry.lease(ref) as model:
            _check_task(model.info, task)
            if check is not None:
                check(model.info)
            limit = length_limit(model.info, truncate)
            requests = await self._tokenize(model, request_id, encode, limit, param)
            results = await cast(PoolingClient, model.engine).pool(requests)
        failed = next((result.error for result in results if result.error is not None), None)
        output = PooledOutput(model.info.name, model.info, results)
        log.info(
            "request_finished",
            request_id=request_id,
            model=output.model,
            finish_reason="error" if failed else "stop",
            inputs=len(results),
            prompt_tokens=output.prompt_tokens,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            **outcome_fields(request_id),
        )
        if failed is not None:
            raise EngineFailure(f"Inference failed: {failed}")
        return output

    async def _tokenize(
        self, model: ServingModel, request_id: str, encode: Encode, limit: int | None, param: str
    ) -> list[PoolingRequest]:
        tokenizer = cast(PairTokenizer, model.renderer)
        with phase("tokenize", {"hfserve.prompt.kind": "pooling"}):
            encoded = await asyncio.to_thread(encode, tokenizer, limit)
        longest = model.info.max_context
        for index, (ids, _) in enumerate(encoded):
            if len(ids) > longest:
                raise PromptTooLong(
                    f"{param}[{index}] has {len(ids)} tokens, more than this model's maximum input length of "
                    f"{longest}. Shorten it, or set truncate_prompt_tokens to cut it.",
                    param=f"{param}[{index}]" if param else None,
                )
        return [PoolingRequest(f"{request_id}-{i}", ids, types) for i, (ids, types) in enumerate(encoded)]


def _check_task(info: ModelInfo, task: str) -> None:
    if info.task != task:
        raise InvalidRequest(
            f"`{info.name}` is a {info.task} model; {_ENDPOINTS[task]} needs {_NEEDS[task]}.", param="model"
        )
