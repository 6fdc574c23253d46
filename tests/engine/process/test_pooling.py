"""The pooling engine in-process on the tiny models: batches bounded by rows and tokens, each row's values the
same as alone, aborted inputs skipped, a failing batch answered with its error, and the poolers' arithmetic."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from app.engine.messages import Pooled
from app.engine.options import BatchLimits
from app.engine.process.pooling import Pooler, PoolingEngine, make_pooler, matryoshka_dimensions
from app.engine.types import PoolingRequest
from tests.fixtures.pooling_models import (
    CROSS_ENCODER_MODEL_ID,
    DECODER_EMBEDDING_MODEL_ID,
    EMBEDDING_MODEL_ID,
    MATRYOSHKA_DIMENSIONS,
)
from tests.support.models import snapshot_path

TEXTS = ["a", "The quick brown fox jumps over the lazy dog.", "Paris is the capital of France.", "hi there"]


class Collected:
    """The engine's ``send``: keeps every ``Pooled`` message; ``wait`` until ``count`` results came."""

    def __init__(self) -> None:
        self.messages: list[Pooled] = []
        self._changed = threading.Condition()

    def __call__(self, message: Pooled) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def wait(self, count: int) -> dict[str, Any]:
        with self._changed:
            assert self._changed.wait_for(lambda: sum(len(m.results) for m in self.messages) >= count, timeout=60)
        return {r.request_id: r for m in self.messages for r in m.results}


def engine_for(folder: Path, model: Any, limits: BatchLimits) -> tuple[PoolingEngine, Collected]:
    pooler, _ = make_pooler("embed", str(folder), model.config)
    sent = Collected()
    return PoolingEngine(model.eval(), pooler, name="t", pad_id=0, limits=limits, send=sent), sent


class Gate(threading.Event):
    """Holds the model's forward passes until set; ``entered`` is set once one is waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()


def held(model: Any) -> tuple[Gate, Any]:
    """Hold ``model``'s forward passes behind a gate; returns it and the real forward (to put back)."""
    gate, real_forward = Gate(), model.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        gate.entered.set()
        gate.wait(30)
        return real_forward(*args, **kwargs)

    model.forward = forward
    return gate, real_forward


def requests(tokenizer: Any, texts: list[str]) -> list[PoolingRequest]:
    return [PoolingRequest(f"r{i}", tokenizer(text)["input_ids"]) for i, text in enumerate(texts)]


@pytest.fixture(scope="module")
def bert(pooling_hf_home: Path) -> tuple[Path, Any, Any]:
    folder = snapshot_path(pooling_hf_home, EMBEDDING_MODEL_ID)
    return folder, AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder)


def test_batches_are_bounded_by_rows_and_padded_tokens(bert: tuple[Path, Any, Any]) -> None:
    folder, tokenizer, model = bert
    engine, sent = engine_for(folder, model, BatchLimits(max_batch_size=3, max_num_batched_tokens=24))
    try:
        batch = requests(tokenizer, TEXTS * 2)
        engine.pool(batch)
        sent.wait(len(batch))
    finally:
        engine.shutdown()
    for message in sent.messages:
        widths = [len(r.prompt_ids) for r in batch if r.request_id in {x.request_id for x in message.results}]
        assert len(widths) <= 3 and (len(widths) == 1 or len(widths) * max(widths) <= 24)
    assert sent.messages[-1].running == 0


def test_each_row_pools_as_it_would_alone(bert: tuple[Path, Any, Any]) -> None:
    folder, tokenizer, model = bert
    engine, sent = engine_for(folder, model, BatchLimits())
    try:
        batch = requests(tokenizer, TEXTS)
        engine.pool(batch)
        results = sent.wait(len(batch))
    finally:
        engine.shutdown()
    with torch.inference_mode():
        for request in batch:
            states = model(input_ids=torch.tensor([list(request.prompt_ids)])).last_hidden_state[0]
            alone = torch.nn.functional.normalize(states.mean(dim=0), dim=-1).numpy()
            np.testing.assert_allclose(results[request.request_id].values, alone, atol=1e-5)
            assert results[request.request_id].prompt_tokens == len(request.prompt_ids)


def test_aborted_inputs_are_skipped(bert: tuple[Path, Any, Any]) -> None:
    folder, tokenizer, model = bert
    engine, sent = engine_for(folder, model, BatchLimits())
    gate, real_forward = held(model)
    try:
        engine.pool(requests(tokenizer, TEXTS[:1]))
        assert gate.entered.wait(30)
        engine.pool([PoolingRequest("dropped", [5, 6]), PoolingRequest("kept", [5, 7])])
        engine.abort("dropped")
        gate.set()
        results = sent.wait(2)
    finally:
        model.forward = real_forward
        engine.shutdown()
    assert set(results) == {"r0", "kept"}


def test_inputs_of_different_requests_share_a_batch(bert: tuple[Path, Any, Any]) -> None:
    folder, _, model = bert
    engine, sent = engine_for(folder, model, BatchLimits())
    gate, real_forward = held(model)
    try:
        engine.pool([PoolingRequest("first", [5, 6])])
        assert gate.entered.wait(30)
        engine.pool([PoolingRequest("b", [5, 7])])  # two more requests arrive while it runs
        engine.pool([PoolingRequest("c", [5, 8, 9])])
        gate.set()
        sent.wait(3)
    finally:
        model.forward = real_forward
        engine.shutdown()
    assert [sorted(r.request_id for r in m.results) for m in sent.messages] == [["first"], ["b", "c"]]


def test_a_failing_batch_answers_with_its_error_and_the_engine_goes_on(bert: tuple[Path, Any, Any]) -> None:
    folder, tokenizer, model = bert
    engine, sent = engine_for(folder, model, BatchLimits())
    try:
        engine.pool([PoolingRequest("bad", [10**6])])  # past the embedding table
        assert sent.wait(1)["bad"].error
        engine.pool(requests(tokenizer, ["fine"]))
        assert sent.wait(2)["r0"].error is None
    finally:
        engine.shutdown()


def test_the_cross_encoder_scores_with_a_sigmoid(pooling_hf_home: Path) -> None:
    folder = snapshot_path(pooling_hf_home, CROSS_ENCODER_MODEL_ID)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    pooler, cap = make_pooler("score", str(folder), model.config)
    assert pooler == Pooler("score", sigmoid=True) and cap is None
    ids = AutoTokenizer.from_pretrained(folder)("query", "document", return_tensors="pt")
    with torch.inference_mode():
        output = model(**ids)
    assert float(pooler(output, ids["attention_mask"])[0, 0]) == pytest.approx(
        float(torch.sigmoid(output.logits[0, 0]))
    )


def test_the_layouts_give_the_poolers(pooling_hf_home: Path) -> None:
    bert = snapshot_path(pooling_hf_home, EMBEDDING_MODEL_ID)
    qwen = snapshot_path(pooling_hf_home, DECODER_EMBEDDING_MODEL_ID)
    assert make_pooler("embed", str(bert), AutoConfig.from_pretrained(bert)) == (Pooler("embed", "mean", True), 32)
    qwen_config = AutoConfig.from_pretrained(qwen)
    assert make_pooler("embed", str(qwen), qwen_config) == (Pooler("embed", "lasttoken", True), None)
    assert matryoshka_dimensions(qwen_config) == tuple(MATRYOSHKA_DIMENSIONS)
    assert matryoshka_dimensions(AutoConfig.from_pretrained(bert)) is None
    assert matryoshka_dimensions(SimpleNamespace(is_matryoshka=True)) == ()


def test_pooling_modes_on_right_padded_states() -> None:
    states = torch.tensor([[[1.0, 0.0], [3.0, 4.0], [9.0, 9.0]], [[2.0, 2.0], [-1.0, 6.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    output = SimpleNamespace(last_hidden_state=states)
    assert Pooler("embed", "cls")(output, mask).tolist() == [[1.0, 0.0], [2.0, 2.0]]
    assert Pooler("embed", "lasttoken")(output, mask).tolist() == [[9.0, 9.0], [-1.0, 6.0]]
    assert Pooler("embed", "max")(output, mask).tolist() == [[9.0, 9.0], [2.0, 6.0]]
    assert Pooler("embed", "mean")(output, mask).flatten().tolist() == pytest.approx([13 / 3, 13 / 3, 0.5, 4.0])
    normalized = Pooler("embed", "cls", normalize=True)(output, mask)
    assert torch.linalg.norm(normalized, dim=-1).tolist() == pytest.approx([1.0, 1.0])


def test_token_type_ids_reach_the_cross_encoder(pooling_hf_home: Path) -> None:
    """Real BERT tokenizers mark a pair's second text; the engine passes those ids through (padded with 0)."""
    folder = snapshot_path(pooling_hf_home, CROSS_ENCODER_MODEL_ID)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    pooler, _ = make_pooler("score", str(folder), model.config)
    sent = Collected()
    engine = PoolingEngine(model, pooler, name="t", pad_id=0, limits=BatchLimits(), send=sent)
    pair = PoolingRequest("pair", [5, 6, 7, 8, 9], token_type_ids=[0, 0, 0, 1, 1])
    try:
        engine.pool([pair, PoolingRequest("longer", [5] * 9, token_type_ids=[0] * 9)])
        score = sent.wait(2)["pair"].values[0]
    finally:
        engine.shutdown()
    with torch.inference_mode():
        ids, types = torch.tensor([[5, 6, 7, 8, 9]]), torch.tensor([[0, 0, 0, 1, 1]])
        expected = torch.sigmoid(model(input_ids=ids, token_type_ids=types).logits[0, 0])
        without = torch.sigmoid(model(input_ids=ids).logits[0, 0])
    assert score == pytest.approx(float(expected), abs=1e-5) and score != pytest.approx(float(without), abs=1e-6)
