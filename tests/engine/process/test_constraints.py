"""Constrained decoding in the batched engine (in its engine process): output that follows a JSON schema
even from a model with random weights, per row, alongside unconstrained rows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import llguidance
import pytest

from app.engine.client.remote import RemoteEngine
from app.serving.structured import json_grammar
from tests.engine.process.test_batched_engine import collect, encode, make_engine, request
from tests.support.models import NEVER_EOS_MODEL_ID, load_tokenizer, snapshot_path

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 12},
        "sunny": {"type": "boolean"},
        "degrees": {"type": "integer", "minimum": -40, "maximum": 50},
        "unit": {"enum": ["C", "F"]},
        "tags": {"type": "array", "items": {"enum": ["warm", "dry"]}, "maxItems": 2},
    },
    "required": ["city", "sunny", "degrees", "unit", "tags"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def random_model(hf_home: Path) -> Iterator[tuple[RemoteEngine, Any]]:
    """The never-EOS model has random weights and is built never to end on its own."""
    folder = snapshot_path(hf_home, NEVER_EOS_MODEL_ID)
    engine = make_engine(folder, "constrained", max_queue=64)
    tokenizer = load_tokenizer(hf_home, NEVER_EOS_MODEL_ID)
    yield engine, tokenizer
    engine.shutdown()


def _eos(tokenizer: Any) -> tuple[int, ...]:
    return (tokenizer.eos_token_id,)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
async def test_schema_output_validates_and_ends_with_eos(
    random_model: tuple[RemoteEngine, Any], temperature: float
) -> None:
    engine, tokenizer = random_model
    grammar = json_grammar(SCHEMA, "response_format")
    req = request(
        encode(tokenizer, "weather"),
        300,
        grammar=grammar,
        stop_token_ids=_eos(tokenizer),
        temperature=temperature,
        seed=7,
    )
    result = await collect(engine.generate(req))
    assert result.finish.reason == "stop", result.text  # the grammar completed, then only EOS was allowed
    jsonschema.validate(json.loads(result.text), SCHEMA)


async def test_constrained_and_free_rows_share_a_batch(random_model: tuple[RemoteEngine, Any]) -> None:
    engine, tokenizer = random_model
    prompt = encode(tokenizer, "weather")
    free = request(prompt, 8)
    alone = await collect(engine.generate(request(prompt, 8)))
    constrained = request(
        prompt,
        300,
        grammar=json_grammar({"enum": ["yes", "no"]}, "response_format"),
        stop_token_ids=_eos(tokenizer),
        temperature=1.0,
    )
    both = await asyncio.gather(collect(engine.generate(free)), collect(engine.generate(constrained)))
    assert both[0].tokens == alone.tokens  # the mask is per row
    assert json.loads(both[1].text) in ("yes", "no")


async def test_regex_grammar(random_model: tuple[RemoteEngine, Any]) -> None:
    engine, tokenizer = random_model
    grammar = llguidance.LLMatcher.grammar_from_regex(r"[0-9]{3}-[a-z]{2}")
    req = request(encode(tokenizer, "code"), 50, grammar=grammar, stop_token_ids=_eos(tokenizer))
    result = await collect(engine.generate(req))
    assert result.finish.reason == "stop"
    assert len(result.text) == 6 and result.text[3] == "-" and result.text[:3].isdigit()
