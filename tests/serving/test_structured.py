"""Structured output: request fields become llguidance grammars that accept exactly the allowed text.

Each grammar is run through a matcher over the tiny chat model's tokenizer, as the engine runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import llguidance
import llguidance.hf
import pytest
from transformers import AutoTokenizer

from app.errors import InvalidRequest, UnsupportedParameter
from app.serving.structured import (
    chosen_tools,
    json_grammar,
    output_constraint,
    response_format_grammar,
    text_format_grammar,
    tool_call_grammar,
)
from tests.support.models import CHAT_MODEL_ID, snapshot_path

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}
TIME = {"type": "function", "function": {"name": "get_time"}}


@pytest.fixture(scope="module")
def tokenizer(hf_home: Path) -> Any:
    return AutoTokenizer.from_pretrained(snapshot_path(hf_home, CHAT_MODEL_ID))


@pytest.fixture(scope="module")
def accepts(tokenizer: Any) -> Any:
    ll = llguidance.hf.from_tokenizer(tokenizer)

    def check(grammar: str, text: str) -> bool:
        matcher = llguidance.LLMatcher(ll, grammar)
        ids = tokenizer.encode(text, add_special_tokens=False)
        return matcher.try_consume_tokens(ids) == len(ids) and matcher.is_accepting()

    return check


def test_text_formats_have_no_grammar() -> None:
    assert response_format_grammar(None) is None
    assert response_format_grammar({"type": "text"}) is None
    assert text_format_grammar({}) is None


def test_json_schema_grammar_accepts_compact_matching_json_only(accepts: Any) -> None:
    grammar = response_format_grammar({"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA}})
    assert grammar is not None
    assert accepts(grammar, '{"city": "Paris"}')
    assert not accepts(grammar, '{"city":"Paris"}')  # one space after separators, no other whitespace
    assert not accepts(grammar, '{"city": 3}')
    assert not accepts(grammar, "{}")
    assert accepts(text_format_grammar({"type": "json_schema", "schema": SCHEMA}), '{"city": "Oslo"}')


def test_json_object_accepts_any_object(accepts: Any) -> None:
    for grammar in (response_format_grammar({"type": "json_object"}), text_format_grammar({"type": "json_object"})):
        assert grammar is not None
        assert accepts(grammar, '{"any": [1, 2]}')
        assert not accepts(grammar, "[1, 2]")


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_object", "value": SCHEMA},  # huggingface_hub's InferenceClient, TGI
        {"type": "json", "value": SCHEMA},  # TGI
        {"type": "json_object", "schema": SCHEMA},  # instructor's JSON_SCHEMA mode
    ],
)
def test_a_schema_in_any_common_form_is_enforced_not_ignored(accepts: Any, response_format: dict) -> None:
    grammar = response_format_grammar(response_format)
    assert grammar is not None
    assert accepts(grammar, '{"city": "Paris"}')
    assert not accepts(grammar, '{"town": "Paris"}')  # a plain json_object grammar would take it


def test_a_regex_response_format_is_enforced(accepts: Any) -> None:
    grammar = response_format_grammar({"type": "regex", "value": "(yes|no), [0-9]{2}"})
    assert grammar is not None
    assert accepts(grammar, "yes, 42") and accepts(grammar, "no, 07")
    assert not accepts(grammar, "maybe, 42") and not accepts(grammar, "yes, 4")


@pytest.mark.parametrize(
    ("response_format", "param"),
    [
        ({"type": "json"}, "response_format.value"),
        ({"type": "json", "value": "not a schema"}, "response_format.value"),
        ({"type": "json_object", "value": SCHEMA, "schema": SCHEMA}, "response_format"),
        ({"type": "regex"}, "response_format.value"),
        ({"type": "regex", "value": "(unclosed"}, "response_format.value"),
        ({"type": "json_schema"}, "response_format.json_schema.schema"),
        ({"type": "json_schema", "json_schema": {"name": "x"}}, "response_format.json_schema.schema"),
        ({"type": "json_schema", "json_schema": {"schema": [1]}}, "response_format.json_schema.schema"),
        ({"type": "yaml"}, "response_format.type"),
    ],
)
def test_bad_response_formats_name_the_field(response_format: dict, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        response_format_grammar(response_format)
    assert caught.value.param == param


@pytest.mark.parametrize(
    ("text_format", "param"),
    [({"type": "json_schema"}, "text.format.schema"), ({"type": "xml"}, "text.format.type")],
)
def test_bad_text_formats_name_the_field(text_format: dict, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        text_format_grammar(text_format)
    assert caught.value.param == param


def test_schemas_that_cannot_be_used_are_400s_naming_the_param() -> None:
    with pytest.raises(UnsupportedParameter, match="cannot be enforced: Invalid type") as caught:
        json_grammar({"type": "no-such-type"}, "text.format.schema")
    assert caught.value.param == "text.format.schema" and caught.value.status == 400
    with pytest.raises(UnsupportedParameter, match="does not exist"):
        json_grammar({"$ref": "#/nowhere"}, "text.format.schema")
    with pytest.raises(InvalidRequest, match="Invalid JSON schema") as caught:
        json_grammar({"enum": {1, 2}}, "response_format.json_schema.schema")  # not JSON at all
    assert caught.value.param == "response_format.json_schema.schema"


def test_chosen_tools_for_required_and_named_choices() -> None:
    tools = [WEATHER, TIME]
    assert chosen_tools(tools, "required") == tools
    assert chosen_tools(tools, {"type": "function", "function": {"name": "get_time"}}) == [TIME]
    assert chosen_tools(tools, {"type": "function", "name": "get_weather"}) == [WEATHER]  # Responses' shape
    with pytest.raises(InvalidRequest, match="`get_date`") as caught:
        chosen_tools(tools, {"type": "function", "name": "get_date"}, param="tools")
    assert caught.value.param == "tools"


def hermes(call: dict) -> str:
    return f"<tool_call>\n{json.dumps(call)}\n</tool_call>"


def test_hermes_grammar_forces_a_call_with_valid_arguments(tokenizer: Any, accepts: Any) -> None:
    vocab = tokenizer.get_vocab()
    single = tool_call_grammar("hermes", [WEATHER, TIME], parallel=False, tokens=vocab)
    weather, time = (
        hermes({"name": "get_weather", "arguments": {"city": "Rome"}}),
        hermes({"name": "get_time", "arguments": {}}),
    )
    assert accepts(single, weather) and accepts(single, time)
    assert not accepts(single, hermes({"name": "get_weather", "arguments": {}}))
    assert not accepts(single, hermes({"name": "get_date", "arguments": {}}))
    assert not accepts(single, "The weather is fine.")
    assert not accepts(single, f"{weather}\n{time}")
    assert accepts(tool_call_grammar("hermes", [WEATHER, TIME], parallel=True, tokens=vocab), f"{weather}\n{time}")


def test_llama3_and_mistral_grammars(accepts: Any) -> None:
    call = json.dumps({"name": "get_weather", "parameters": {"city": "Rome"}})
    llama = tool_call_grammar("llama3_json", [WEATHER], parallel=True, tokens={})
    assert accepts(llama, call) and accepts(llama, f"{call}; {call}")
    assert not accepts(tool_call_grammar("llama3_json", [WEATHER], parallel=False, tokens={}), f"{call}; {call}")
    item = {"name": "get_weather", "arguments": {"city": "Rome"}}
    mistral = tool_call_grammar("mistral", [WEATHER], parallel=False, tokens={})  # marker matched as text here
    assert accepts(mistral, f"[TOOL_CALLS]{json.dumps([item])}")
    assert not accepts(mistral, f"[TOOL_CALLS]{json.dumps([item, item])}")
    assert not accepts(mistral, "[TOOL_CALLS][]")


def test_other_tool_formats_cannot_be_forced() -> None:
    for parser in (None, "qwen3_coder", "gemma4"):
        with pytest.raises(UnsupportedParameter) as caught:
            tool_call_grammar(parser, [WEATHER], parallel=False, tokens={})
        assert caught.value.param == "tool_choice"


# -- vLLM's structured_outputs and guided_* fields -----------------------------------------------------


@pytest.mark.parametrize(
    "request_fields",
    [
        {"structured_outputs": {"json": SCHEMA}},
        {"structured_outputs": {"json": json.dumps(SCHEMA), "disable_any_whitespace": True}},
        {"guided_json": SCHEMA},
        {"guided_json": json.dumps(SCHEMA)},
    ],
)
def test_vllm_json_schema_forms(accepts: Any, request_fields: dict[str, Any]) -> None:
    grammar = output_constraint(None, **request_fields)
    assert grammar is not None
    assert accepts(grammar, '{"city": "Paris"}')
    assert not accepts(grammar, '{"town": "Paris"}')


def test_vllm_json_object_regex_choice_and_grammar(accepts: Any) -> None:
    json_object = output_constraint(None, {"json_object": True})
    assert accepts(json_object, '{"a": 1}') and not accepts(json_object, "[1]")
    assert output_constraint(None, {"json_object": False}) is None
    for regex in (
        output_constraint(None, {"regex": r"[0-9]{3}-[a-z]+"}),
        output_constraint(guided_regex=r"[0-9]{3}-[a-z]+"),
    ):
        assert accepts(regex, "123-abc") and not accepts(regex, "12-abc")
    for choice in (output_constraint(None, {"choice": ["yes", "no"]}), output_constraint(guided_choice=["yes", "no"])):
        assert accepts(choice, "yes") and accepts(choice, "no") and not accepts(choice, "maybe")
    lark = 'start: "(" num ("," num)* ")"\nnum: /[0-9]+/\n'
    gbnf = 'root ::= "(" num ("," num)* ")"\nnum ::= [0-9]+\n'
    for text in (lark, gbnf):
        grammar = output_constraint(guided_grammar=text)
        assert accepts(grammar, "(1,22,3)") and not accepts(grammar, "(1,)")


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"structured_outputs": {"regex": "[0-9"}}, "structured_outputs.regex"),
        ({"guided_regex": "(a"}, "guided_regex"),
        ({"guided_grammar": "root ::= ("}, "guided_grammar"),
        ({"structured_outputs": {"grammar": "start: undefined_rule"}}, "structured_outputs.grammar"),
        ({"guided_json": "{not json"}, "guided_json"),
        ({"structured_outputs": {"json": {"type": "no-such-type"}}}, "structured_outputs.json"),
        ({"guided_choice": []}, "guided_choice"),
        ({"structured_outputs": {"structural_tag": "{}"}}, "structured_outputs.structural_tag"),
        ({"structured_outputs": {"regex": "a", "choice": ["a"]}}, "structured_outputs.choice"),
        ({"structured_outputs": {"json": SCHEMA}, "guided_regex": "a"}, "guided_regex"),
        (
            {"response_format": {"type": "json_object"}, "structured_outputs": {"choice": ["a"]}},
            "structured_outputs.choice",
        ),
    ],
)
def test_bad_or_conflicting_constraints_are_400s_naming_the_field(kwargs: dict[str, Any], param: str) -> None:
    response_format = kwargs.pop("response_format", None)
    with pytest.raises((InvalidRequest, UnsupportedParameter)) as caught:
        output_constraint(response_format, **kwargs)
    assert caught.value.status == 400
    assert caught.value.param == param


def test_a_text_response_format_does_not_conflict() -> None:
    assert output_constraint({"type": "text"}, guided_choice=["a", "b"]) is not None
