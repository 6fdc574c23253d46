"""Continuous batching seen from outside: concurrency, n, logprobs, disconnects, backpressure."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.fixtures.tiny_models import CHAT_MODEL_ID, NEVER_EOS_MODEL_ID
from tests.support.server import ServerProcess, run_server

USER = [{"role": "user", "content": "Tell me a story."}]


def engine_load(server: ServerProcess, model: str = NEVER_EOS_MODEL_ID) -> dict[str, int]:
    """Running rows and waiting requests of ``model``'s engine, as /health reports them."""
    engine = httpx.get(f"{server.url}/health").json()["engines"].get(f"{model}@main", {})
    return {"running": engine.get("running", 0), "waiting": engine.get("waiting", 0)}


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_concurrent_greedy_requests_match_generate(server: ServerProcess, hf_home: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.support.models import snapshot_path

    path = snapshot_path(hf_home, NEVER_EOS_MODEL_ID)
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)
    conversations = [[{"role": "user", "content": "word " * n}] for n in (1, 7, 30, 90)]
    lengths = [20, 33, 9, 41]
    expected = []
    for messages, max_new in zip(conversations, lengths, strict=True):
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        out = model.generate(**ids, do_sample=False, max_new_tokens=max_new)
        expected.append(tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))

    async def run() -> list[str]:
        async with AsyncOpenAI(base_url=server.base_url, api_key="unused", max_retries=0) as client:
            replies = await asyncio.gather(
                *(
                    client.chat.completions.create(model=NEVER_EOS_MODEL_ID, messages=m, temperature=0, max_tokens=n)
                    for m, n in zip(conversations, lengths, strict=True)
                )
            )
        return [r.choices[0].message.content for r in replies]

    assert asyncio.run(run()) == expected


def test_n_choices(server: ServerProcess) -> None:
    client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    greedy = client.chat.completions.create(model=NEVER_EOS_MODEL_ID, messages=USER, n=3, max_tokens=8, temperature=0)
    assert [c.index for c in greedy.choices] == [0, 1, 2]
    assert len({c.message.content for c in greedy.choices}) == 1
    assert greedy.usage.completion_tokens == 24
    sampled = client.chat.completions.create(
        model=NEVER_EOS_MODEL_ID, messages=USER, n=3, max_tokens=12, temperature=1.0, seed=5, stream=True
    )
    texts = {0: "", 1: "", 2: ""}
    finished = set()
    for chunk in sampled:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished.add(choice.index)
    assert finished == {0, 1, 2}
    assert len(set(texts.values())) == 3


def test_logprobs_in_chat_format(server: ServerProcess) -> None:
    client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model=CHAT_MODEL_ID,
        messages=[{"role": "user", "content": "Hello"}],
        temperature=0,
        logprobs=True,
        top_logprobs=2,
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
    )
    content = reply.choices[0].logprobs.content
    assert "".join(entry.token for entry in content) == reply.choices[0].message.content
    assert len(content) == reply.usage.completion_tokens - 1  # the final <|im_end|> has no text
    for entry in content:
        assert entry.logprob <= 0 and len(entry.top_logprobs) == 2
        assert entry.top_logprobs[0].token == entry.token
        assert bytes(entry.bytes).decode() == entry.token
    chunks = list(
        client.chat.completions.create(
            model=CHAT_MODEL_ID,
            messages=[{"role": "user", "content": "Hello"}],
            temperature=0,
            logprobs=True,
            stream=True,
            extra_body={"chat_template_kwargs": {"enable_thinking": False}},
        )
    )
    streamed = [e.token for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert streamed == [entry.token for entry in content]


def test_stream_disconnect_frees_the_row(server: ServerProcess) -> None:
    body = {"model": NEVER_EOS_MODEL_ID, "messages": USER, "max_tokens": 1900, "stream": True}
    with httpx.Client(timeout=30) as http, http.stream("POST", f"{server.base_url}/chat/completions", json=body) as r:
        lines = r.iter_lines()
        for _ in range(4):
            next(lines)
        assert engine_load(server)["running"] == 1
    wait_for(lambda: engine_load(server)["running"] == 0, timeout=5)


def test_non_stream_disconnect_aborts_generation(server: ServerProcess) -> None:
    payload = json.dumps({"model": NEVER_EOS_MODEL_ID, "messages": USER, "max_tokens": 1900}).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + payload)
        wait_for(lambda: engine_load(server)["running"] == 1)
    wait_for(lambda: engine_load(server)["running"] == 0, timeout=5)
    records = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    aborted = [r for r in records if r["event"] == "engine_request_aborted"]
    assert aborted and aborted[-1]["completion_tokens"] < 1900


@pytest.fixture(scope="module")
def narrow(hf_home: Path, logs_dir: Path) -> Iterator[ServerProcess]:
    """One row, one waiting request: the third concurrent request must be turned away at once."""
    args = ("--max-batch-size", "1", "--max-queue", "1", "--model-timeout", "-1")
    with run_server(hf_home, logs_dir, *args) as proc:
        httpx.post(f"{proc.url}/load_model", json={"model": NEVER_EOS_MODEL_ID}, timeout=60).read()
        yield proc


@pytest.mark.parametrize("stream", [False, True])
def test_full_queue_answers_429_at_once(narrow: ServerProcess, stream: bool) -> None:
    long = {"model": NEVER_EOS_MODEL_ID, "messages": USER, "max_tokens": 1900, "stream": True}
    url = f"{narrow.base_url}/chat/completions"
    with httpx.Client(timeout=60) as a, httpx.Client(timeout=60) as b, a.stream("POST", url, json=long) as running:
        assert running.status_code == 200
        wait_for(lambda: engine_load(narrow) == {"running": 1, "waiting": 0})
        with b.stream("POST", url, json=long) as queued:
            assert queued.status_code == 200
            wait_for(lambda: engine_load(narrow) == {"running": 1, "waiting": 1})
            started = time.monotonic()
            refused = httpx.post(url, json={**long, "stream": stream, "max_tokens": 2}, timeout=10)
            assert time.monotonic() - started < 2.0
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["error"]["type"] == "rate_limit_error"
    wait_for(lambda: engine_load(narrow) == {"running": 0, "waiting": 0})


def test_a_resent_prefix_is_served_from_the_prefix_cache(server: ServerProcess) -> None:
    """Chat, completions and responses report the prompt tokens whose prefill the prefix cache saved, and a greedy
    answer with a cache hit is the answer without one."""
    client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    chat = [{"role": "system", "content": "word " * 120}, *USER]
    first = client.chat.completions.create(model=NEVER_EOS_MODEL_ID, messages=chat, max_tokens=12, temperature=0)
    again = client.chat.completions.create(model=NEVER_EOS_MODEL_ID, messages=chat, max_tokens=12, temperature=0)
    assert again.choices[0].message.content == first.choices[0].message.content
    prompt = first.usage.prompt_tokens
    assert again.usage.prompt_tokens_details.cached_tokens == (prompt - 1) // 16 * 16 > 0
    text = "story " * 100
    client.completions.create(model=NEVER_EOS_MODEL_ID, prompt=text, max_tokens=4, temperature=0)
    completion = client.completions.create(model=NEVER_EOS_MODEL_ID, prompt=text, max_tokens=4, temperature=0)
    assert completion.usage.prompt_tokens_details.cached_tokens >= 96
    response = client.responses.create(model=NEVER_EOS_MODEL_ID, input=chat, max_output_tokens=4, temperature=0)
    assert response.usage.input_tokens_details.cached_tokens >= 96
    engine = httpx.get(f"{server.url}/health").json()["engines"][f"{NEVER_EOS_MODEL_ID}@main"]
    assert engine["kv_blocks_total"] > 0 and engine["prefix_cache_hits"] >= 3 * 96
