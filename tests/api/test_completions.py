"""/v1/completions end to end: the official client, raw SSE, the legacy formats and the error cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import torch
from openai import OpenAI

from tests.fixtures.tiny_models import NEVER_EOS_MODEL_ID
from tests.support.models import load_model_and_tokenizer, snapshot_path
from tests.support.server import ServerProcess

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def test_wire_format_and_default_max_tokens(client: OpenAI) -> None:
    completion = client.completions.create(model=NEVER_EOS_MODEL_ID, prompt=PROMPT)
    assert completion.object == "text_completion" and completion.id.startswith("cmpl-")
    assert completion.model == f"{NEVER_EOS_MODEL_ID}@main"
    assert completion.usage.completion_tokens == 16  # OpenAI's default max_tokens here
    assert completion.choices[0].finish_reason == "length"


def test_greedy_text_equals_model_generate(client: OpenAI, hf_home: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = snapshot_path(hf_home, NEVER_EOS_MODEL_ID)
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)
    ids = tokenizer(PROMPT, return_tensors="pt")
    out = model.generate(**ids, do_sample=False, max_new_tokens=20)
    expected = tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    served = client.completions.create(model=NEVER_EOS_MODEL_ID, prompt=PROMPT, max_tokens=20, temperature=0)
    assert served.choices[0].text == expected
    assert served.usage.prompt_tokens == ids["input_ids"].shape[1]


def test_stream_equals_non_stream(client: OpenAI, server: ServerProcess) -> None:
    whole = client.completions.create(model=NEVER_EOS_MODEL_ID, prompt=PROMPT, max_tokens=12, temperature=0)
    chunks = list(
        client.completions.create(
            model=NEVER_EOS_MODEL_ID,
            prompt=PROMPT,
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert chunks[-1].usage.completion_tokens == 12
    body = {"model": NEVER_EOS_MODEL_ID, "prompt": PROMPT, "max_tokens": 3, "stream": True}
    raw = httpx.post(f"{server.base_url}/completions", json=body, timeout=30).text
    frames = [f for f in raw.split("\n\n") if f]
    assert frames[-1] == "data: [DONE]"
    assert all(json.loads(f[6:])["object"] == "text_completion" for f in frames[:-1])


def test_several_prompts_and_choices(client: OpenAI) -> None:
    prompts = ["one two", "three four five"]
    reply = client.completions.create(model=NEVER_EOS_MODEL_ID, prompt=prompts, n=2, max_tokens=4, temperature=0)
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    alone = [
        client.completions.create(model=NEVER_EOS_MODEL_ID, prompt=p, max_tokens=4, temperature=0) for p in prompts
    ]
    assert [c.text for c in reply.choices] == [alone[0].choices[0].text] * 2 + [alone[1].choices[0].text] * 2
    assert reply.usage.completion_tokens == 16
    assert reply.usage.prompt_tokens == sum(a.usage.prompt_tokens for a in alone)


def test_token_id_prompts(client: OpenAI) -> None:
    single = client.completions.create(model=NEVER_EOS_MODEL_ID, prompt=[5, 6, 7], max_tokens=3, temperature=0)
    batch = client.completions.create(model=NEVER_EOS_MODEL_ID, prompt=[[5, 6, 7], [8, 9]], max_tokens=3, temperature=0)
    assert single.usage.prompt_tokens == 3 and batch.usage.prompt_tokens == 5
    assert batch.choices[0].text == single.choices[0].text


def test_legacy_logprobs(client: OpenAI) -> None:
    reply = client.completions.create(model=NEVER_EOS_MODEL_ID, prompt=PROMPT, max_tokens=6, logprobs=3, temperature=0)
    lp = reply.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == 6
    assert "".join(lp.tokens) == reply.choices[0].text
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(6)]
    assert all(
        len(top) <= 3 and max(top.values()) == pytest.approx(chosen)
        for top, chosen in zip(lp.top_logprobs, lp.token_logprobs, strict=True)
    )


def test_echo_puts_the_prompt_first(client: OpenAI) -> None:
    plain = client.completions.create(model=NEVER_EOS_MODEL_ID, prompt=PROMPT, max_tokens=4, temperature=0)
    echoed = client.completions.create(model=NEVER_EOS_MODEL_ID, prompt=PROMPT, max_tokens=4, temperature=0, echo=True)
    assert echoed.choices[0].text == PROMPT + plain.choices[0].text
    streamed = client.completions.create(
        model=NEVER_EOS_MODEL_ID, prompt=PROMPT, max_tokens=4, temperature=0, echo=True, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == echoed.choices[0].text


@pytest.fixture(scope="module")
def never_eos(hf_home: Path) -> tuple[Any, Any]:
    """The served model, loaded in this process: its own forward pass is what prompt logprobs must equal."""
    return load_model_and_tokenizer(hf_home, NEVER_EOS_MODEL_ID)


def own_logprobs(model: Any, ids: list[int]) -> torch.Tensor:
    """[len(ids), vocab]: the model's log-softmax at every position of one forward pass."""
    with torch.inference_mode():
        return torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)


def test_echo_with_logprobs_scores_the_prompt(client: OpenAI, never_eos: tuple[Any, Any]) -> None:
    model, tokenizer = never_eos
    ids = tokenizer(PROMPT)["input_ids"]
    expected = own_logprobs(model, ids)
    reply = client.completions.create(
        model=NEVER_EOS_MODEL_ID, prompt=PROMPT, echo=True, logprobs=2, max_tokens=0, temperature=0
    )
    choice = reply.choices[0]
    assert (choice.text, choice.finish_reason, reply.usage.completion_tokens) == (PROMPT, "length", 0)
    lp = choice.logprobs
    assert lp.tokens == [tokenizer.decode([t]) for t in ids]
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert lp.token_logprobs[1:] == pytest.approx([float(expected[i, t]) for i, t in enumerate(ids[1:])], abs=1e-4)
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(len(ids))]
    for position, top in enumerate(lp.top_logprobs[1:]):
        best = torch.topk(expected[position], 2)
        names = {tokenizer.decode([t]) for t in best.indices.tolist()} | {lp.tokens[position + 1]}
        assert set(top) == names
        assert max(top.values()) == pytest.approx(float(best.values[0]), abs=1e-4)


def test_echo_with_logprobs_then_generated_tokens(client: OpenAI) -> None:
    """What lm-eval's loglikelihood requests send: token ids, echo, logprobs 1 and one generated token."""
    prompt = [5, 6, 7, 8, 9]
    scored = client.completions.create(
        model=NEVER_EOS_MODEL_ID, prompt=prompt, echo=True, logprobs=1, max_tokens=1, temperature=0
    )
    plain = client.completions.create(model=NEVER_EOS_MODEL_ID, prompt=prompt, logprobs=1, max_tokens=1, temperature=0)
    lp, generated = scored.choices[0].logprobs, plain.choices[0].logprobs
    assert len(lp.token_logprobs) == len(prompt) + 1
    assert lp.tokens[-1:] == generated.tokens and lp.token_logprobs[-1] == pytest.approx(generated.token_logprobs[0])
    assert scored.choices[0].text.endswith(plain.choices[0].text)
    assert lp.text_offset[-1] == len(scored.choices[0].text) - len(plain.choices[0].text)


def test_streamed_echo_carries_the_same_logprobs(client: OpenAI) -> None:
    fields = {"model": NEVER_EOS_MODEL_ID, "prompt": PROMPT, "echo": True, "logprobs": 1, "temperature": 0}
    whole = client.completions.create(**fields, max_tokens=3)
    chunks = [c for c in client.completions.create(**fields, max_tokens=3, stream=True) if c.choices]
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
    streamed = [v for c in chunks if c.choices[0].logprobs for v in c.choices[0].logprobs.token_logprobs]
    assert streamed[0] is None and streamed[1:] == pytest.approx(whole.choices[0].logprobs.token_logprobs[1:])
    only = [c for c in client.completions.create(**fields, max_tokens=0, stream=True) if c.choices]
    assert "".join(c.choices[0].text for c in only) == PROMPT and only[-1].choices[0].finish_reason == "length"


def test_vllm_prompt_logprobs(server: ServerProcess, never_eos: tuple[Any, Any]) -> None:
    model, _ = never_eos
    prompt = [11, 12, 13, 14, 15, 16]
    expected = own_logprobs(model, prompt)
    body = {"model": NEVER_EOS_MODEL_ID, "prompt": prompt, "prompt_logprobs": 2, "max_tokens": 2, "temperature": 0}
    reply = httpx.post(f"{server.base_url}/completions", json=body, timeout=30).json()
    choice = reply["choices"][0]
    assert choice.get("logprobs") is None and reply["usage"]["completion_tokens"] == 2
    positions = choice["prompt_logprobs"]
    assert len(positions) == len(prompt) and positions[0] is None
    for i, (token, entries) in enumerate(zip(prompt[1:], positions[1:], strict=True)):
        row = expected[i]
        assert entries[str(token)]["logprob"] == pytest.approx(float(row[token]), abs=1e-4)
        assert entries[str(token)]["rank"] == int((row > row[token]).sum()) + 1
        for rank, top in enumerate(torch.topk(row, 2).indices.tolist(), start=1):
            assert entries[str(top)]["rank"] == rank
        assert set(entries) == {str(token), *(str(t) for t in torch.topk(row, 2).indices.tolist())}
        assert all(isinstance(entry["decoded_token"], str) for entry in entries.values())
    scored_only = {**body, "max_tokens": 0, "prompt_logprobs": 0}
    alone = httpx.post(f"{server.base_url}/completions", json=scored_only, timeout=30).json()["choices"][0]
    assert alone["text"] == "" and alone["finish_reason"] == "length"
    assert [list(p) for p in alone["prompt_logprobs"][1:]] == [[str(t)] for t in prompt[1:]]


def test_stop_and_seed(client: OpenAI) -> None:
    full = client.completions.create(model=NEVER_EOS_MODEL_ID, prompt=PROMPT, max_tokens=20, temperature=0).choices[0]
    cut = full.text[len(full.text) // 2 :][:3]
    stopped = client.completions.create(
        model=NEVER_EOS_MODEL_ID, prompt=PROMPT, max_tokens=20, temperature=0, stop=[cut]
    ).choices[0]
    assert stopped.finish_reason == "stop" and stopped.text == full.text[: full.text.index(cut)]

    def sample(seed: int) -> str:
        return (
            client.completions.create(
                model=NEVER_EOS_MODEL_ID, prompt=PROMPT, max_tokens=16, temperature=1.0, seed=seed
            )
            .choices[0]
            .text
        )

    assert sample(3) == sample(3) != sample(4)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "def f(", "suffix": "return x"}, "suffix"),  # the tiny tokenizer has no FIM tokens
        ({"prompt": [1, 2], "suffix": "x"}, "suffix"),
        ({"prompt": PROMPT, "best_of": 3}, "best_of"),
        ({"prompt": []}, "prompt"),
        ({"prompt": [10**7]}, "prompt"),
        ({"prompt": {"text": "x"}}, "prompt"),
        ({"prompt": PROMPT, "max_tokens": 0}, "max_tokens"),
        ({"prompt": PROMPT, "logprobs": 21}, "logprobs"),
        ({"prompt": PROMPT, "prompt_logprobs": 21}, "prompt_logprobs"),
        ({"prompt": PROMPT, "prompt_logprobs": 1, "stream": True}, "prompt_logprobs"),
        ({"prompt": PROMPT, "max_tokens": -1}, "max_tokens"),
    ],
)
def test_invalid_requests(server: ServerProcess, body: dict, param: str) -> None:
    resp = httpx.post(f"{server.base_url}/completions", json={"model": NEVER_EOS_MODEL_ID, **body}, timeout=30)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param


def test_unknown_model_is_404(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nobody/nothing", prompt=PROMPT)
