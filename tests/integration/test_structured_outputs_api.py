"""vLLM's structured outputs end to end: ``structured_outputs`` and the ``guided_*`` fields on chat and
completions, enforced by the engine on the tiny models (a trained one and one that never stops on its own),
through the official ``openai`` client's ``extra_body`` as vLLM's users send them."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import jsonschema
import pytest
from openai import OpenAI

from tests.fixtures.tiny_models import CHAT_MODEL_ID, NEVER_EOS_MODEL_ID
from tests.support.server import ServerProcess

NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}
MODELS = [CHAT_MODEL_ID, NEVER_EOS_MODEL_ID]
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 12}, "rank": {"enum": [1, 2, 3]}},
    "required": ["city", "rank"],
    "additionalProperties": False,
}
REGEX = r"[0-9]{3}-[a-z]{2,5}"
CHOICES = ["Paris", "Berlin", "Madrid"]
GRAMMAR_LARK = 'start: "(" num ("," num){0,3} ")"\nnum: /[0-9]{1,2}/\n'
GRAMMAR_GBNF = 'root ::= "(" num ("," num)? ")"\nnum ::= [0-9] [0-9]?\n'


def _grammar_output(text: str) -> bool:
    return re.fullmatch(r"\([0-9]{1,2}(,[0-9]{1,2})*\)", text) is not None


CASES = [
    ({"structured_outputs": {"json": SCHEMA}}, lambda text: jsonschema.validate(json.loads(text), SCHEMA) is None),
    ({"guided_json": SCHEMA}, lambda text: jsonschema.validate(json.loads(text), SCHEMA) is None),
    ({"structured_outputs": {"regex": REGEX}}, lambda text: re.fullmatch(REGEX, text) is not None),
    ({"guided_regex": REGEX}, lambda text: re.fullmatch(REGEX, text) is not None),
    ({"structured_outputs": {"choice": CHOICES}}, lambda text: text in CHOICES),
    ({"guided_choice": CHOICES}, lambda text: text in CHOICES),
    ({"structured_outputs": {"grammar": GRAMMAR_LARK}}, _grammar_output),
    ({"guided_grammar": GRAMMAR_GBNF}, _grammar_output),
]
IDS = [
    "so-json",
    "guided-json",
    "so-regex",
    "guided-regex",
    "so-choice",
    "guided-choice",
    "so-lark",
    "guided-gbnf",
]


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("fields", "holds"), CASES, ids=IDS)
def test_chat_output_satisfies_the_constraint(client: OpenAI, model: str, fields: dict[str, Any], holds: Any) -> None:
    completion = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=60,
        extra_body={**NO_THINKING, **fields},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert holds(choice.message.content)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("fields", "holds"), CASES, ids=IDS)
def test_completions_output_satisfies_the_constraint(
    client: OpenAI, model: str, fields: dict[str, Any], holds: Any
) -> None:
    completion = client.completions.create(
        model=model, prompt="The capital of France is", max_tokens=60, extra_body=fields
    )
    assert completion.choices[0].finish_reason == "stop"
    assert holds(completion.choices[0].text)


def test_json_object_output_is_an_object(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model=CHAT_MODEL_ID,
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=100,
        extra_body={**NO_THINKING, "structured_outputs": {"json_object": True}},
    )
    content = completion.choices[0].message.content
    assert content.startswith("{"), content  # unconstrained, this model answers in words
    if completion.choices[0].finish_reason == "stop":  # a weak model may write one string until the limit
        assert isinstance(json.loads(content), dict)


def test_streamed_choice_is_one_of_the_choices(client: OpenAI) -> None:
    chunks = client.chat.completions.create(
        model=NEVER_EOS_MODEL_ID,
        messages=[{"role": "user", "content": "Pick a city."}],
        stream=True,
        extra_body={**NO_THINKING, "guided_choice": CHOICES},
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) in CHOICES


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"structured_outputs": {"regex": "[0-9"}}, "structured_outputs.regex"),
        ({"guided_grammar": "root ::= ("}, "guided_grammar"),
        ({"guided_json": {"type": "no-such-type"}}, "guided_json"),
        ({"guided_choice": []}, "guided_choice"),
        ({"structured_outputs": {"regex": "a", "choice": ["a"]}}, "structured_outputs.choice"),
        ({"guided_json": SCHEMA, "response_format": {"type": "json_object"}}, "guided_json"),
    ],
)
@pytest.mark.parametrize("endpoint", ["chat/completions", "completions"])
def test_bad_or_conflicting_constraints_are_400s(
    server: ServerProcess, endpoint: str, fields: dict[str, Any], param: str
) -> None:
    if endpoint == "completions":
        if "response_format" in fields:
            return  # completions take no response_format
        body: dict[str, Any] = {"model": CHAT_MODEL_ID, "prompt": "Hi", **fields}
    else:
        body = {"model": CHAT_MODEL_ID, "messages": [{"role": "user", "content": "Hi"}], **fields}
    answer = httpx.post(f"{server.base_url}/{endpoint}", json=body, timeout=30)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
