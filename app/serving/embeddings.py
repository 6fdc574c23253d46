"""``POST /v1/embeddings``: texts or token arrays → one vector each from an embed model's pooling engine, cut to
``dimensions`` (and renormalized) where the model allows it, as floats or base64 float32."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence

import numpy as np

from app.engine.types import ModelInfo, PairTokenizer
from app.errors import InvalidRequest
from app.models.registry import ModelRegistry
from app.protocol.embeddings import Embedding, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage
from app.serving.pooling import EMBED_TASK, Encode, Encoded, PoolingRunner

Input = str | list[int]


def _inputs(req: EmbeddingRequest) -> list[Input]:
    value = req.input
    if isinstance(value, str) or (value and isinstance(value[0], int)):
        return [value]  # type: ignore[list-item]
    return list(value)  # type: ignore[arg-type]


def _encoder(inputs: Sequence[Input]) -> Encode:
    def encode(tokenizer: PairTokenizer, limit: int | None) -> list[Encoded]:
        encoded: list[Encoded] = []
        for item in inputs:
            ids = tokenizer.encode(item, max_length=limit) if isinstance(item, str) else list(item[:limit])
            encoded.append((ids, None))
        return encoded

    return encode


def check_dimensions(info: ModelInfo, dimensions: int | None) -> None:
    """``dimensions`` only for Matryoshka models, within their vector size (and their listed sizes, if any)."""
    if dimensions is None:
        return
    allowed, size = info.matryoshka_dimensions, info.embedding_size or 0
    if allowed is None:
        raise InvalidRequest(
            f"`{info.name}` does not support `dimensions`: it is not a Matryoshka model (its config sets neither "
            "is_matryoshka nor matryoshka_dimensions).",
            param="dimensions",
        )
    if dimensions > size or (allowed and dimensions not in allowed):
        sizes = ", ".join(map(str, allowed)) if allowed else f"1 to {size}"
        raise InvalidRequest(f"dimensions must be one of: {sizes}.", param="dimensions")


def shaped(vector: np.ndarray, dimensions: int | None, encoding: str) -> list[float] | str:
    """The first ``dimensions`` values, L2-renormalized; as floats or base64 of little-endian float32."""
    values = np.asarray(vector, dtype=np.float32)
    if dimensions is not None and dimensions < values.shape[0]:
        values = values[:dimensions]
        values = values / max(float(np.linalg.norm(values)), 1e-12)
    if encoding == "base64":
        return base64.b64encode(values.astype("<f4").tobytes()).decode("ascii")
    return [float(v) for v in values]


class EmbeddingService:
    def __init__(self, registry: ModelRegistry) -> None:
        self._runner = PoolingRunner(registry)

    async def create(self, req: EmbeddingRequest) -> EmbeddingResponse:
        inputs = _inputs(req)
        if any(isinstance(item, str) and not item for item in inputs):
            index = next(i for i, item in enumerate(inputs) if item == "")
            raise InvalidRequest(f"input[{index}] is empty.", param="input")
        output = await self._runner.run(
            f"embd-{uuid.uuid4().hex}",
            req.model,
            EMBED_TASK,
            _encoder(inputs),
            param="input",
            truncate=req.truncate_prompt_tokens,
            check=lambda info: check_dimensions(info, req.dimensions),
        )
        data = [
            Embedding(index=i, embedding=shaped(result.values, req.dimensions, req.encoding_format))
            for i, result in enumerate(output.results)
        ]
        usage = EmbeddingUsage(prompt_tokens=output.prompt_tokens, total_tokens=output.prompt_tokens)
        return EmbeddingResponse(data=data, model=output.model, usage=usage)
