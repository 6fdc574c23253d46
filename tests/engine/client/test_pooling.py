"""An embed or score model through its engine process: the loader picks the pooling engine and tokenizer, results
come back in input order, admission refuses before anything is sent, and a dead process fails what waits."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.engine.client.loader import LoadedModel, load_model
from app.engine.client.pooling import PoolingTokenizer, RemotePoolingEngine
from app.engine.options import BatchLimits, LoadOptions
from app.engine.types import GenerationRequest, PoolingRequest, SamplingParams
from app.errors import EngineFailure, InvalidRequest, Overloaded, ServiceUnavailable
from tests.fixtures.pooling_models import (
    CROSS_ENCODER_MODEL_ID,
    DECODER_EMBEDDING_MODEL_ID,
    EMBEDDING_MAX_TOKENS,
    EMBEDDING_MODEL_ID,
    MATRYOSHKA_DIMENSIONS,
)
from tests.support.models import snapshot_path


def load(home: Path, repo: str, limits: BatchLimits | None = None) -> LoadedModel:
    options = LoadOptions(dtype="float32", limits=limits or BatchLimits())
    return load_model(repo, str(snapshot_path(home, repo)), None, options, lambda *a: None)


@pytest.fixture
def embedder(pooling_hf_home: Path) -> Iterator[LoadedModel]:
    model = load(pooling_hf_home, EMBEDDING_MODEL_ID, BatchLimits(max_queue=1))
    yield model
    model.close()


async def test_an_embedding_model_runs_the_pooling_engine(embedder: LoadedModel) -> None:
    engine, info = embedder.engine, embedder.info
    assert isinstance(engine, RemotePoolingEngine) and isinstance(embedder.serving.renderer, PoolingTokenizer)
    assert (info.task, info.max_context, info.embedding_size, info.matryoshka_dimensions) == (
        "embed",
        EMBEDDING_MAX_TOKENS,
        64,
        None,
    )
    results = await engine.pool([PoolingRequest("b", [5, 6, 7, 8]), PoolingRequest("a", [5, 6])])
    assert [(r.request_id, r.prompt_tokens) for r in results] == [("b", 4), ("a", 2)]
    assert all(np.linalg.norm(r.values) == pytest.approx(1.0, abs=1e-5) for r in results)  # 2_Normalize
    assert engine.health().alive and engine.health().running == 0
    with pytest.raises(InvalidRequest, match="embed model"):
        engine.generate(GenerationRequest("g", [5], SamplingParams(max_tokens=2)))


async def test_admission_refuses_before_sending(embedder: LoadedModel) -> None:
    engine = embedder.engine
    assert isinstance(engine, RemotePoolingEngine)
    with pytest.raises(InvalidRequest, match="input 1"):
        await engine.pool([PoolingRequest("x", [5]), PoolingRequest("y", [10**6])])
    with pytest.raises(InvalidRequest, match="empty"):
        await engine.pool([PoolingRequest("z", [])])
    first = asyncio.ensure_future(engine.pool([PoolingRequest("q1", [5] * 30)]))
    await asyncio.sleep(0)
    with pytest.raises(Overloaded):  # --max-queue 1: one request is in the line
        await engine.pool([PoolingRequest("q2", [5])])
    assert (await first)[0].error is None


async def test_a_killed_engine_process_fails_what_waits(embedder: LoadedModel) -> None:
    engine = embedder.engine
    assert isinstance(engine, RemotePoolingEngine)
    waiting = asyncio.ensure_future(engine.pool([PoolingRequest(f"k{i}", [5] * 30) for i in range(64)]))
    await asyncio.sleep(0)
    os.kill(engine._process.pid, signal.SIGKILL)
    with pytest.raises(EngineFailure):
        await waiting
    assert not engine.health().alive
    with pytest.raises(ServiceUnavailable):  # a 503 while the registry replaces it, not a 500
        await engine.pool([PoolingRequest("after", [5])])


def test_the_decoder_embedding_model_and_the_cross_encoder_load_as_their_task(pooling_hf_home: Path) -> None:
    qwen = load(pooling_hf_home, DECODER_EMBEDDING_MODEL_ID)
    try:
        assert qwen.info.task == "embed" and qwen.info.matryoshka_dimensions == tuple(MATRYOSHKA_DIMENSIONS)
        assert qwen.info.max_context == 2048  # no cap of its own: the model's positions
    finally:
        qwen.close()
    cross = load(pooling_hf_home, CROSS_ENCODER_MODEL_ID)
    try:
        assert cross.info.task == "score" and cross.info.embedding_size is None
        ids, types = cross.serving.renderer.encode_pair("query", "a document")  # type: ignore[attr-defined]
        assert len(ids) > 4 and (types is None or len(types) == len(ids))
    finally:
        cross.close()
