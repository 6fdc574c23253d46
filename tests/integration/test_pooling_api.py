"""Embeddings, rerank and score end to end: a real server over the tiny embedding models and cross-encoder, the
official openai SDK and httpx, checked against the pooling computed here with ``from_pretrained`` and torch."""

from __future__ import annotations

import base64
import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import torch
from openai import OpenAI
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from tests.fixtures.pooling_models import (
    CROSS_ENCODER_MODEL_ID,
    DECODER_EMBEDDING_MODEL_ID,
    EMBEDDING_MAX_TOKENS,
    EMBEDDING_MODEL_ID,
    MATRYOSHKA_DIMENSIONS,
)
from tests.fixtures.tiny_models import CHAT_MODEL_ID, ENCODER_MODEL_ID
from tests.support.models import snapshot_path
from tests.support.server import ServerProcess, run_server

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Paris is the capital of France.", "hi", "Numbers: 1 2 3"]
QUERY = "What is the capital of France?"
DOCUMENTS = ["Paris is the capital of France.", "The weather today is sunny.", "Berlin is in Germany.", "42"]


@pytest.fixture(scope="module")
def server(pooling_hf_home: Path, logs_dir: Path) -> Iterator[ServerProcess]:
    with run_server(pooling_hf_home, logs_dir, "--model-timeout", "-1") as proc:
        yield proc


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=120)


def reference_embeddings(folder: Path, texts: list[str], mode: str, normalize: bool) -> np.ndarray:
    """The model's vectors computed here, one text at a time (no padding), pooled and normalized by hand."""
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    vectors = []
    with torch.inference_mode():
        for text in texts:
            states = model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0]
            vector = states.mean(dim=0) if mode == "mean" else states[-1]
            vectors.append(torch.nn.functional.normalize(vector, dim=-1) if normalize else vector)
    return torch.stack(vectors).numpy()


def reference_scores(folder: Path, query: str, documents: list[str]) -> list[float]:
    """sentence-transformers' CrossEncoder by hand: the pair through the classifier, then the sigmoid."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.inference_mode():
        return [
            float(torch.sigmoid(model(**tokenizer(query, doc, return_tensors="pt")).logits[0, 0])) for doc in documents
        ]


@pytest.mark.parametrize(
    ("model", "mode", "normalize"),
    [
        (EMBEDDING_MODEL_ID, "mean", True),
        (DECODER_EMBEDDING_MODEL_ID, "lasttoken", True),
        (ENCODER_MODEL_ID, "mean", False),
    ],
)
def test_embeddings_match_the_reference_pooling(
    client: OpenAI, pooling_hf_home: Path, model: str, mode: str, normalize: bool
) -> None:
    expected = reference_embeddings(snapshot_path(pooling_hf_home, model), TEXTS, mode, normalize)
    floats = client.embeddings.create(model=model, input=TEXTS, encoding_format="float")
    assert [item.index for item in floats.data] == list(range(len(TEXTS)))
    np.testing.assert_allclose(np.array([item.embedding for item in floats.data]), expected, atol=2e-5)
    encoded = client.embeddings.create(model=model, input=TEXTS)  # the SDK asks for base64 and decodes it
    np.testing.assert_allclose(np.array([item.embedding for item in encoded.data]), expected, atol=2e-5)
    tokenizer = AutoTokenizer.from_pretrained(snapshot_path(pooling_hf_home, model))
    counted = sum(len(tokenizer(text)["input_ids"]) for text in TEXTS)
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == counted
    assert floats.model == f"{model}@main"


def test_base64_is_little_endian_float32(server: ServerProcess) -> None:
    body = {"model": EMBEDDING_MODEL_ID, "input": "hello world"}
    floats = httpx.post(f"{server.base_url}/embeddings", json=body, timeout=60).json()
    raw = httpx.post(f"{server.base_url}/embeddings", json={**body, "encoding_format": "base64"}, timeout=60).json()
    decoded = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_array_equal(decoded, np.array(floats["data"][0]["embedding"], dtype=np.float32))
    assert raw["object"] == "list" and raw["data"][0]["object"] == "embedding"
    assert raw["usage"] == floats["usage"]


def test_token_arrays_embed_as_their_text_does(client: OpenAI, pooling_hf_home: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(snapshot_path(pooling_hf_home, EMBEDDING_MODEL_ID))
    ids = [tokenizer(text)["input_ids"] for text in TEXTS[:2]]
    from_text = client.embeddings.create(model=EMBEDDING_MODEL_ID, input=TEXTS[:2], encoding_format="float")
    many = client.embeddings.create(model=EMBEDDING_MODEL_ID, input=ids, encoding_format="float")
    one = client.embeddings.create(model=EMBEDDING_MODEL_ID, input=ids[1], encoding_format="float")
    expected = np.array([item.embedding for item in from_text.data])
    np.testing.assert_allclose(np.array([item.embedding for item in many.data]), expected, atol=1e-5)
    np.testing.assert_allclose(one.data[0].embedding, expected[1], atol=1e-5)
    assert one.usage.prompt_tokens == len(ids[1])


def test_dimensions_truncate_and_renormalize_a_matryoshka_model(client: OpenAI) -> None:
    full = client.embeddings.create(model=DECODER_EMBEDDING_MODEL_ID, input=TEXTS, encoding_format="float")
    size = MATRYOSHKA_DIMENSIONS[0]
    cut = client.embeddings.create(model=DECODER_EMBEDDING_MODEL_ID, input=TEXTS, dimensions=size)
    for whole, short in zip(full.data, cut.data, strict=True):
        head = np.array(whole.embedding[:size])
        np.testing.assert_allclose(short.embedding, head / np.linalg.norm(head), atol=1e-5)
        assert len(short.embedding) == size
    with pytest.raises(openai.BadRequestError) as unlisted:
        client.embeddings.create(model=DECODER_EMBEDDING_MODEL_ID, input="hi", dimensions=size + 1)
    assert unlisted.value.body["param"] == "dimensions"
    with pytest.raises(openai.BadRequestError) as not_matryoshka:
        client.embeddings.create(model=EMBEDDING_MODEL_ID, input="hi", dimensions=16)
    assert not_matryoshka.value.body["param"] == "dimensions"
    assert "Matryoshka" in not_matryoshka.value.body["message"]


def test_concurrent_requests_are_batched_in_the_engine(client: OpenAI, server: ServerProcess) -> None:
    expected = client.embeddings.create(model=EMBEDDING_MODEL_ID, input=TEXTS, encoding_format="float")
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        jobs = [
            pool.submit(client.embeddings.create, model=EMBEDDING_MODEL_ID, input=TEXTS[i % 4], encoding_format="float")
            for i in range(32)
        ]
        results = [job.result() for job in jobs]
    for i, result in enumerate(results):  # padded among others, each vector is still its own
        np.testing.assert_allclose(result.data[0].embedding, expected.data[i % 4].embedding, atol=1e-5)


def test_an_input_over_the_length_limit_is_a_400_unless_truncation_is_asked(
    server: ServerProcess, pooling_hf_home: Path
) -> None:
    long_text = " ".join(["word"] * (EMBEDDING_MAX_TOKENS * 2))
    body = {"model": EMBEDDING_MODEL_ID, "input": ["short", long_text]}
    refused = httpx.post(f"{server.base_url}/embeddings", json=body, timeout=60)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "input[1]"
    assert refused.json()["error"]["code"] == "context_length_exceeded"
    cut = httpx.post(f"{server.base_url}/embeddings", json={**body, "truncate_prompt_tokens": -1}, timeout=60)
    assert cut.status_code == 200
    tokenizer = AutoTokenizer.from_pretrained(snapshot_path(pooling_hf_home, EMBEDDING_MODEL_ID))
    kept = tokenizer(long_text, truncation=True, max_length=EMBEDDING_MAX_TOKENS)["input_ids"]  # [CLS] ... [SEP]
    assert cut.json()["usage"]["prompt_tokens"] == len(tokenizer("short")["input_ids"]) + EMBEDDING_MAX_TOKENS
    as_ids = httpx.post(f"{server.base_url}/embeddings", json={**body, "input": kept}, timeout=60).json()
    np.testing.assert_allclose(cut.json()["data"][1]["embedding"], as_ids["data"][0]["embedding"], atol=1e-6)
    over = httpx.post(f"{server.base_url}/embeddings", json={**body, "truncate_prompt_tokens": 1000}, timeout=60)
    assert over.status_code == 400 and over.json()["error"]["param"] == "truncate_prompt_tokens"


def test_rerank_matches_the_cross_encoder(server: ServerProcess, pooling_hf_home: Path) -> None:
    expected = reference_scores(snapshot_path(pooling_hf_home, CROSS_ENCODER_MODEL_ID), QUERY, DOCUMENTS)
    documents = [DOCUMENTS[0], *({"text": doc} for doc in DOCUMENTS[1:])]
    body = {"model": CROSS_ENCODER_MODEL_ID, "query": QUERY, "documents": documents}
    for path in ("/v1/rerank", "/rerank", "/v2/rerank"):
        response = httpx.post(f"{server.url}{path}", json=body, timeout=60)
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [r["index"] for r in results] == sorted(range(4), key=lambda i: -expected[i])
        for result in results:
            assert result["relevance_score"] == pytest.approx(expected[result["index"]], abs=1e-5)
            assert result["document"] == {"text": DOCUMENTS[result["index"]]}
    top = httpx.post(f"{server.url}/v1/rerank", json={**body, "top_n": 2, "return_documents": False}, timeout=60)
    assert [set(r) for r in top.json()["results"]] == [{"index", "relevance_score"}] * 2
    assert top.json()["usage"]["total_tokens"] > 0


def test_score_pairs_one_to_many_and_many_to_many(server: ServerProcess, pooling_hf_home: Path) -> None:
    expected = reference_scores(snapshot_path(pooling_hf_home, CROSS_ENCODER_MODEL_ID), QUERY, DOCUMENTS)
    body = {"model": CROSS_ENCODER_MODEL_ID, "text_1": QUERY, "text_2": DOCUMENTS}
    one_to_many = httpx.post(f"{server.base_url}/score", json=body, timeout=60).json()
    assert one_to_many["object"] == "list"
    assert [(d["index"], d["object"]) for d in one_to_many["data"]] == [(i, "score") for i in range(4)]
    assert [d["score"] for d in one_to_many["data"]] == pytest.approx(expected, abs=1e-5)
    pairwise = {**body, "text_1": [QUERY] * 4}
    assert httpx.post(f"{server.url}/score", json=pairwise, timeout=60).json()["data"] == one_to_many["data"]
    single = httpx.post(f"{server.base_url}/score", json={**body, "text_2": DOCUMENTS[1]}, timeout=60).json()
    assert single["data"][0]["score"] == pytest.approx(expected[1], abs=1e-5)
    mismatched = httpx.post(f"{server.base_url}/score", json={**pairwise, "text_1": [QUERY] * 3}, timeout=60)
    assert mismatched.status_code == 400 and mismatched.json()["error"]["param"] == "text_1"


@pytest.mark.parametrize(
    ("path", "body", "param", "says"),
    [
        ("/v1/embeddings", {"model": CHAT_MODEL_ID, "input": "hi"}, "model", "text-generation"),
        ("/v1/embeddings", {"model": CROSS_ENCODER_MODEL_ID, "input": "hi"}, "model", "score"),
        ("/v1/rerank", {"model": EMBEDDING_MODEL_ID, "query": "q", "documents": ["d"]}, "model", "embed"),
        (
            "/v1/chat/completions",
            {"model": EMBEDDING_MODEL_ID, "messages": [{"role": "user", "content": "hi"}]},
            "model",
            "embed",
        ),
        ("/v1/completions", {"model": CROSS_ENCODER_MODEL_ID, "prompt": "hi"}, "model", "score"),
        ("/v1/embeddings", {"model": EMBEDDING_MODEL_ID, "input": ""}, "input", "empty"),
        ("/v1/embeddings", {"model": EMBEDDING_MODEL_ID, "input": []}, "input", ""),
        ("/v1/embeddings", {"model": EMBEDDING_MODEL_ID, "input": [[1, 99999]]}, "input", "Token ids"),
        (
            "/v1/embeddings",
            {"model": EMBEDDING_MODEL_ID, "input": "hi", "encoding_format": "int8"},
            "encoding_format",
            "",
        ),
        ("/v1/rerank", {"model": CROSS_ENCODER_MODEL_ID, "query": "q", "documents": []}, "documents", ""),
    ],
)
def test_requests_a_model_cannot_serve_are_400s(
    server: ServerProcess, path: str, body: dict, param: str, says: str
) -> None:
    response = httpx.post(f"{server.url}{path}", json=body, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert says in error["message"]


def test_models_are_listed_with_their_task(server: ServerProcess) -> None:
    cards = {card["id"]: card for card in httpx.get(f"{server.base_url}/models").json()["data"]}
    assert cards[EMBEDDING_MODEL_ID]["task"] == cards[DECODER_EMBEDDING_MODEL_ID]["task"] == "embed"
    assert cards[ENCODER_MODEL_ID]["task"] == "embed"
    assert cards[CROSS_ENCODER_MODEL_ID]["task"] == "score"
    assert cards[CHAT_MODEL_ID]["task"] == "text-generation"
