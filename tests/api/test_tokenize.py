"""/tokenize and /detokenize end to end on a real server: counts equal what a chat completion is charged,
prompts round-trip, and bad input is a 400 naming its field."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from app.demo.canned_chats import WEATHER_TOOL
from tests.support.models import CHAT_MODEL_ID, load_tokenizer
from tests.support.server import ServerProcess

HELLO = [{"role": "user", "content": "Hello"}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]


def _post(server: ServerProcess, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json={"model": CHAT_MODEL_ID, **body}, timeout=60)


@pytest.mark.parametrize(
    ("messages", "extra"),
    [
        (HELLO, {}),
        (HELLO, {"chat_template_kwargs": {"enable_thinking": False}}),
        (WEATHER, {"tools": [WEATHER_TOOL]}),
    ],
)
def test_a_chat_counts_what_a_chat_completion_is_charged(
    server: ServerProcess, messages: list[dict], extra: dict
) -> None:
    client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    completion = client.chat.completions.create(
        model=CHAT_MODEL_ID,
        messages=messages,
        max_tokens=2,
        extra_body=extra,  # tools ride in the body too
    )
    resp = _post(server, "/tokenize", {"messages": messages, **extra})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["count"] == completion.usage.prompt_tokens == len(body["tokens"])
    assert body["max_model_len"] > body["count"] and "token_strs" not in body


def test_a_prompt_round_trips_with_its_token_strings(server: ServerProcess, hf_home: Path) -> None:
    tokenizer = load_tokenizer(hf_home, CHAT_MODEL_ID)
    text = "The capital of France is Paris."
    resp = _post(server, "/tokenize", {"prompt": text, "return_token_strs": True})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["tokens"] == tokenizer(text)["input_ids"] and body["count"] == len(body["tokens"])
    assert body["token_strs"] == tokenizer.convert_ids_to_tokens(body["tokens"])
    back = _post(server, "/detokenize", {"tokens": body["tokens"]})
    assert back.status_code == 200 and back.json() == {"prompt": text}


def test_the_generation_prompt_and_special_tokens_follow_the_request(server: ServerProcess, hf_home: Path) -> None:
    tokenizer = load_tokenizer(hf_home, CHAT_MODEL_ID)
    with_prompt = _post(server, "/tokenize", {"messages": HELLO}).json()["tokens"]
    without = _post(server, "/tokenize", {"messages": HELLO, "add_generation_prompt": False}).json()["tokens"]
    assert len(without) < len(with_prompt) and with_prompt[: len(without)] == without
    rendered = _post(server, "/detokenize", {"tokens": with_prompt}).json()["prompt"]
    assert rendered == tokenizer.apply_chat_template(HELLO, tokenize=False, add_generation_prompt=True)
    special = _post(server, "/tokenize", {"messages": HELLO, "add_special_tokens": True}).json()["tokens"]
    assert special == tokenizer(rendered)["input_ids"]
    partial = [*HELLO, {"role": "assistant", "content": "Hel"}]
    continued = _post(server, "/tokenize", {"messages": partial, "continue_final_message": True}).json()["tokens"]
    assert _post(server, "/detokenize", {"tokens": continued}).json()["prompt"].endswith("Hel")


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/detokenize", {"tokens": [1, 10**9]}, "tokens"),
        ("/detokenize", {"tokens": [-1]}, "tokens"),
        ("/detokenize", {"tokens": [1.5]}, "tokens[0]"),
        ("/detokenize", {}, "tokens"),
        ("/tokenize", {}, "prompt"),
        ("/tokenize", {"prompt": "a", "messages": HELLO}, "messages"),
        ("/tokenize", {"messages": []}, "messages"),
        (
            "/tokenize",
            {"messages": HELLO, "continue_final_message": True, "add_generation_prompt": True},
            "continue_final_message",
        ),
        ("/tokenize", {"messages": HELLO, "chat_template_kwargs": {"tokenize": True}}, "chat_template_kwargs"),
    ],
)
def test_bad_input_is_a_400_naming_its_field(server: ServerProcess, path: str, body: dict, param: str) -> None:
    resp = _post(server, path, body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_an_unknown_model_is_a_404(server: ServerProcess) -> None:
    resp = httpx.post(f"{server.url}/tokenize", json={"model": "nobody/nothing", "prompt": "a"}, timeout=30)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "model_not_found"
