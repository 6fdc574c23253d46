"""/tokenize on the media models: a chat with an image counts its image tokens as a chat completion is
charged them, and a speech-to-text model has no text prompt to tokenize (400 naming ``model``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.fixtures.media_models import IMAGE_TOKENS_PER_IMAGE, SPEECH_MODEL_ID, VISION_MODEL_ID
from tests.support.media import data_url, png
from tests.support.server import ServerProcess, run_server


@pytest.fixture(scope="module")
def server(media_hf_home: Path, logs_dir: Path) -> Iterator[ServerProcess]:
    with run_server(media_hf_home, logs_dir, "--model-timeout", "-1") as proc:
        yield proc


def _tokenize(server: ServerProcess, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/tokenize", json=body, timeout=120)


def test_an_image_counts_as_a_chat_completion_is_charged(server: ServerProcess) -> None:
    question = {"type": "text", "text": "What is in this picture?"}
    image = {"type": "image_url", "image_url": {"url": data_url(png(), "image/png")}}
    messages = [{"role": "user", "content": [question, image]}]
    client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    charged = client.chat.completions.create(model=VISION_MODEL_ID, messages=messages, max_tokens=1).usage
    counted = _tokenize(server, {"model": VISION_MODEL_ID, "messages": messages})
    assert counted.status_code == 200, counted.text
    assert counted.json()["count"] == charged.prompt_tokens
    text_only = _tokenize(server, {"model": VISION_MODEL_ID, "messages": [{"role": "user", "content": [question]}]})
    assert counted.json()["count"] == text_only.json()["count"] + IMAGE_TOKENS_PER_IMAGE


def test_a_speech_model_has_no_text_prompt_to_tokenize(server: ServerProcess) -> None:
    for path, body in (("/tokenize", {"prompt": "hello"}), ("/detokenize", {"tokens": [1, 2]})):
        resp = httpx.post(f"{server.url}{path}", json={"model": SPEECH_MODEL_ID, **body}, timeout=120)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["param"] == "model"
