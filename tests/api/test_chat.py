"""/v1/chat/completions end to end: a real server process, the official clients, raw SSE."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import httpx_sse
import pytest
from huggingface_hub import InferenceClient
from openai import AsyncOpenAI, BadRequestError, OpenAI

from app.demo.canned_chats import CANNED_CHATS, CAPITAL_ANSWER, GREETING
from app.parsers.reasoning import THINK
from tests.fixtures.tiny_models import CHAT_MODEL_ID, NEVER_EOS_MODEL_ID
from tests.support.server import ServerProcess

CAPITAL = [{"role": "user", "content": "What is the capital of France?"}]
NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def _canned(name: str) -> dict:
    return next(chat for chat in CANNED_CHATS if chat["name"] == name)


def test_non_stream_completion_wire_format(client: OpenAI) -> None:
    before = int(time.time())
    completion = client.chat.completions.create(
        model=CHAT_MODEL_ID, messages=CAPITAL, temperature=0, extra_body=NO_THINKING
    )
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == f"{CHAT_MODEL_ID}@main"
    assert before <= completion.created <= int(time.time())
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == CAPITAL_ANSWER
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_stream_matches_non_stream(client: OpenAI) -> None:
    kwargs = {"model": CHAT_MODEL_ID, "messages": CAPITAL, "temperature": 0}
    whole = client.chat.completions.create(**kwargs)
    chunks = list(client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({chunk.id for chunk in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert all(chunk.model == f"{CHAT_MODEL_ID}@main" for chunk in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finish_chunks = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finish_chunks] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_usage_option_has_no_usage_chunk(client: OpenAI) -> None:
    chunks = list(client.chat.completions.create(model=NEVER_EOS_MODEL_ID, messages=CAPITAL, max_tokens=3, stream=True))
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(c.usage is None for c in chunks)


def test_raw_sse_frames(server: ServerProcess) -> None:
    body = {"model": CHAT_MODEL_ID, "messages": CAPITAL, "stream": True, "temperature": 0, **NO_THINKING}
    with (
        httpx.Client(timeout=30) as http,
        http.stream("POST", f"{server.base_url}/chat/completions", json=body) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(resp.iter_bytes()).decode()
    frames = [frame for frame in raw.split("\n\n") if frame]
    assert all(frame.startswith("data: ") for frame in frames)
    assert frames[-1] == "data: [DONE]"
    payloads = [json.loads(frame.removeprefix("data: ")) for frame in frames[:-1]]
    assert payloads[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(p["choices"][0]["delta"].get("content", "") for p in payloads) == CAPITAL_ANSWER


def test_sse_parser_library_reads_the_stream(server: ServerProcess) -> None:
    body = {
        "model": CHAT_MODEL_ID,
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": True,
        "temperature": 0,
        **NO_THINKING,
    }
    with (
        httpx.Client(timeout=30) as http,
        httpx_sse.connect_sse(http, "POST", f"{server.base_url}/chat/completions", json=body) as source,
    ):
        data = [event.data for event in source.iter_sse()]
    assert data[-1] == "[DONE]"
    text = "".join(json.loads(d)["choices"][0]["delta"].get("content", "") for d in data[:-1])
    assert text == GREETING


def test_inference_client(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    # The test process keeps the Hub offline, which InferenceClient applies to every URL, even loopback.
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    hf = InferenceClient(server.url)
    messages = [{"role": "user", "content": "Hello"}]
    result = hf.chat_completion(messages, model=CHAT_MODEL_ID, max_tokens=64, temperature=0, extra_body=NO_THINKING)
    assert result.choices[0].message.content == GREETING
    stream = hf.chat_completion(
        messages, model=CHAT_MODEL_ID, max_tokens=64, temperature=0, stream=True, extra_body=NO_THINKING
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream) == GREETING


def test_multi_turn_conversation(client: OpenAI) -> None:
    chat = (
        _canned("name-alice")
        if any(c["name"] == "name-alice" for c in CANNED_CHATS)
        else next(c for c in CANNED_CHATS if len(c["messages"]) > 1 and not c["tools"])
    )
    completion = client.chat.completions.create(
        model=CHAT_MODEL_ID,
        messages=chat["messages"],
        temperature=0,
        extra_body={"chat_template_kwargs": chat["chat_template_kwargs"]},
    )
    assert completion.choices[0].message.content == chat["completion"]


def test_chat_template_kwargs_toggle_thinking(client: OpenAI) -> None:
    thinking = client.chat.completions.create(
        model=CHAT_MODEL_ID,
        messages=CAPITAL,
        temperature=0,
        extra_body={"chat_template_kwargs": {"enable_thinking": True}},
    )
    plain = client.chat.completions.create(model=CHAT_MODEL_ID, messages=CAPITAL, temperature=0, extra_body=NO_THINKING)
    canned = _canned("capital-thinking")
    assert thinking.choices[0].message.content == canned["content"] == CAPITAL_ANSWER
    assert thinking.choices[0].message.reasoning_content == canned["reasoning"]
    assert plain.choices[0].message.content == CAPITAL_ANSWER
    assert getattr(plain.choices[0].message, "reasoning_content", None) is None


def test_thinking_token_budget_ends_the_reasoning_early(client: OpenAI) -> None:
    thinking = {"chat_template_kwargs": {"enable_thinking": True}}
    whole = client.chat.completions.create(model=CHAT_MODEL_ID, messages=CAPITAL, temperature=0, extra_body=thinking)
    cut = client.chat.completions.create(
        model=CHAT_MODEL_ID, messages=CAPITAL, temperature=0, extra_body={**thinking, "thinking_token_budget": 6}
    )
    full = _canned("capital-thinking")["reasoning"]
    assert whole.choices[0].message.reasoning_content == full
    reasoning = cut.choices[0].message.reasoning_content
    assert reasoning and full.startswith(reasoning) and len(reasoning) < len(full)
    assert cut.choices[0].message.content  # the model answers after the forced end (what it says is its own)
    spent = cut.usage.completion_tokens_details.reasoning_tokens
    assert spent < whole.usage.completion_tokens_details.reasoning_tokens
    with pytest.raises(BadRequestError) as refused:
        client.chat.completions.create(model=CHAT_MODEL_ID, messages=CAPITAL, extra_body={"thinking_token_budget": 0})
    assert refused.value.body["param"] == "thinking_token_budget"


def test_stop_string_is_trimmed(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model=CHAT_MODEL_ID, messages=CAPITAL, temperature=0, stop=["Paris"], extra_body=NO_THINKING
    )
    assert completion.choices[0].message.content == "The capital of France is "
    assert completion.choices[0].finish_reason == "stop"
    chunks = list(
        client.chat.completions.create(
            model=CHAT_MODEL_ID, messages=CAPITAL, temperature=0, stop="of Fr", stream=True, extra_body=NO_THINKING
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "The capital "


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_token_limits(client: OpenAI, field: str) -> None:
    completion = client.chat.completions.create(model=NEVER_EOS_MODEL_ID, messages=CAPITAL, **{field: 7})
    assert completion.usage.completion_tokens == 7
    assert completion.choices[0].finish_reason == "length"


@pytest.mark.parametrize("config", ['{"max_new_tokens": 4}', {"max_new_tokens": 4}])
def test_generation_config_in_body(client: OpenAI, config: object) -> None:
    completion = client.chat.completions.create(
        model=NEVER_EOS_MODEL_ID, messages=CAPITAL, extra_body={"generation_config": config}
    )
    assert completion.usage.completion_tokens == 4


def test_generation_config_do_sample_false_is_greedy(client: OpenAI) -> None:
    body = {"generation_config": {"do_sample": False, "max_new_tokens": 12}}
    first = client.chat.completions.create(model=NEVER_EOS_MODEL_ID, messages=CAPITAL, extra_body=body)
    second = client.chat.completions.create(model=NEVER_EOS_MODEL_ID, messages=CAPITAL, extra_body=body)
    greedy = client.chat.completions.create(model=NEVER_EOS_MODEL_ID, messages=CAPITAL, temperature=0, max_tokens=12)
    assert first.choices[0].message.content == second.choices[0].message.content == greedy.choices[0].message.content


def test_seed_makes_sampling_reproducible(client: OpenAI) -> None:
    def sample(seed: int) -> str:
        completion = client.chat.completions.create(
            model=NEVER_EOS_MODEL_ID, messages=CAPITAL, temperature=1.0, max_tokens=24, seed=seed
        )
        return completion.choices[0].message.content

    assert sample(1234) == sample(1234)
    assert sample(1234) != sample(4321)


def test_greedy_output_equals_model_generate(client: OpenAI, hf_home: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.support.models import snapshot_path

    for repo_id, max_new in ((CHAT_MODEL_ID, 64), (NEVER_EOS_MODEL_ID, 24)):
        path = snapshot_path(hf_home, repo_id)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path)
        for messages in (
            CAPITAL,
            [{"role": "user", "content": "Tell me a long story about a " + "very " * 40 + "old cat."}],
        ):
            ids = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            out = model.generate(**ids, do_sample=False, max_new_tokens=max_new)
            expected = tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
            served = client.chat.completions.create(model=repo_id, messages=messages, temperature=0, max_tokens=max_new)
            parser = THINK()  # the served text is the generated text with its <think> span split off
            parts = [*parser.feed(expected), *parser.finish()]
            message = served.choices[0].message
            assert message.content == "".join(p.content for p in parts)
            assert (getattr(message, "reasoning_content", None) or "") == "".join(p.reasoning for p in parts)
            assert served.usage.prompt_tokens == ids["input_ids"].shape[1]


def test_concurrent_requests_all_complete(server: ServerProcess) -> None:
    async def run() -> list[int]:
        async with AsyncOpenAI(base_url=server.base_url, api_key="unused", max_retries=0) as aclient:

            async def one(i: int) -> int:
                messages = [{"role": "user", "content": f"request {i} " + "word " * i}]
                if i % 2:
                    stream = await aclient.chat.completions.create(
                        model=NEVER_EOS_MODEL_ID,
                        messages=messages,
                        max_tokens=12,
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                    return [c async for c in stream][-1].usage.completion_tokens
                done = await aclient.chat.completions.create(model=NEVER_EOS_MODEL_ID, messages=messages, max_tokens=12)
                return done.usage.completion_tokens

            return await asyncio.gather(*(one(i) for i in range(10)))

    assert asyncio.run(run()) == [12] * 10


def test_client_disconnect_mid_stream_aborts_generation(server: ServerProcess) -> None:
    body = {"model": NEVER_EOS_MODEL_ID, "messages": CAPITAL, "max_tokens": 1900, "stream": True}
    with httpx.Client(timeout=30) as http, http.stream("POST", f"{server.base_url}/chat/completions", json=body) as r:
        lines = r.iter_lines()
        request_id = json.loads(next(line for line in lines if line.startswith("data: "))[6:])["id"]
        for _ in range(5):
            next(lines)
    # the connection is closed here, long before 1900 tokens
    deadline = time.monotonic() + 20
    aborted: list[dict] = []
    while not aborted and time.monotonic() < deadline:
        records = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        aborted = [r for r in records if r["event"] == "engine_request_aborted" and r["request_id"] == request_id]
        time.sleep(0.05)
    assert aborted and aborted[0]["completion_tokens"] < 1900
    assert any(r["event"] == "request_aborted" and r["request_id"] == request_id for r in records)
    # the engine is free again right away
    reply = httpx.post(
        f"{server.base_url}/chat/completions", json={**body, "stream": False, "max_tokens": 2}, timeout=30
    )
    assert reply.json()["usage"]["completion_tokens"] == 2


def test_prompt_logprobs_on_the_response(server: ServerProcess, hf_home: Path) -> None:
    """vLLM's ``prompt_logprobs``: the rendered prompt's logprobs, on the response (not a choice), from the model's
    own forward pass; refused with stream."""
    import torch

    from tests.support.models import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(hf_home, NEVER_EOS_MODEL_ID)
    ids = tokenizer.apply_chat_template(CAPITAL, add_generation_prompt=True, return_dict=True)["input_ids"]
    with torch.inference_mode():
        expected = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
    body = {"model": NEVER_EOS_MODEL_ID, "messages": CAPITAL, "prompt_logprobs": 1, "max_tokens": 2}
    reply = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=30).json()
    positions = reply["prompt_logprobs"]
    assert len(positions) == len(ids) == reply["usage"]["prompt_tokens"] and positions[0] is None
    for i, (token, entries) in enumerate(zip(ids[1:], positions[1:], strict=True)):
        assert entries[str(token)]["logprob"] == pytest.approx(float(expected[i, token]), abs=1e-4)
        assert str(int(expected[i].argmax())) in entries and len(entries) <= 2
    assert "prompt_logprobs" not in reply["choices"][0]
    streamed = httpx.post(f"{server.base_url}/chat/completions", json={**body, "stream": True}, timeout=30)
    assert streamed.status_code == 400 and streamed.json()["error"]["param"] == "prompt_logprobs"
