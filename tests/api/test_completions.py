"""/v1/completions end to end: the official client, raw SSE, the legacy formats and the error cases."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.fixtures.tiny_models import NEVER_EOS_MODEL_ID
from tests.support.models import snapshot_path
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
        ({"prompt": PROMPT, "echo": True, "logprobs": 1}, "echo"),
        ({"prompt": PROMPT, "best_of": 3}, "best_of"),
        ({"prompt": []}, "prompt"),
        ({"prompt": [10**7]}, "prompt"),
        ({"prompt": {"text": "x"}}, "prompt"),
        ({"prompt": PROMPT, "max_tokens": 0}, "max_tokens"),
        ({"prompt": PROMPT, "logprobs": 21}, "logprobs"),
    ],
)
def test_invalid_requests(server: ServerProcess, body: dict, param: str) -> None:
    resp = httpx.post(f"{server.base_url}/completions", json={"model": NEVER_EOS_MODEL_ID, **body}, timeout=30)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param


def test_unknown_model_is_404(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nobody/nothing", prompt=PROMPT)
