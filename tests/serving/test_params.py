"""to_sampling_params: request fields → SamplingParams, with precedence and validation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from app.engine.types import ModelInfo, ReasoningMarkers, SamplingParams
from app.errors import InvalidRequest, PromptTooLong
from app.serving.params import parse_generation_config, to_sampling_params

EOS = (7, 9)


def info(max_context: int = 100, vocab_size: int | None = None, **defaults: Any) -> ModelInfo:
    return ModelInfo(
        name="org/model@main",
        max_context=max_context,
        eos_token_ids=EOS,
        generation_defaults=defaults,
        vocab_size=vocab_size,
    )


def params(
    fields: Mapping[str, Any] | None = None,
    model: ModelInfo | None = None,
    prompt_tokens: int = 10,
    **kwargs: Any,
) -> SamplingParams:
    return to_sampling_params(fields or {}, info=model or info(), prompt_tokens=prompt_tokens, **kwargs)


# -- defaults and precedence -------------------------------------------------------------------


def test_defaults_without_anything_set() -> None:
    p = params()
    assert p == SamplingParams(max_tokens=90, stop_token_ids=EOS)
    assert not p.greedy


def test_model_generation_defaults_apply() -> None:
    model = info(temperature=0.6, top_p=0.95, top_k=20, min_p=0.05, repetition_penalty=1.1, max_new_tokens=30)
    p = params(model=model)
    assert (p.temperature, p.top_p, p.top_k, p.min_p, p.repetition_penalty) == (0.6, 0.95, 20, 0.05, 1.1)
    assert p.max_tokens == 30


def test_request_generation_config_beats_model_defaults() -> None:
    model = info(temperature=0.6, top_p=0.95, top_k=20)
    p = params({"generation_config": {"temperature": 0.2, "top_k": 5}}, model=model)
    assert (p.temperature, p.top_p, p.top_k) == (0.2, 0.95, 5)


def test_request_generation_config_as_json_string() -> None:
    text = json.dumps({"temperature": 0.3, "max_new_tokens": 12, "seed": 4, "stop_strings": ["END"], "min_p": 0.1})
    p = params({"generation_config": text}, model=info(temperature=0.6))
    assert (p.temperature, p.max_tokens, p.seed, p.stop, p.min_p) == (0.3, 12, 4, ("END",), 0.1)


def test_explicit_fields_beat_generation_config_and_model_defaults() -> None:
    model = info(temperature=0.6, top_p=0.95, max_new_tokens=30)
    fields = {
        "generation_config": {"temperature": 0.2, "top_p": 0.5, "max_new_tokens": 20, "seed": 1, "stop_strings": ["x"]},
        "temperature": 1.3,
        "top_p": 0.8,
        "max_tokens": 5,
        "seed": 2,
        "stop": "y",
    }
    p = params(fields, model=model)
    assert (p.temperature, p.top_p, p.max_tokens, p.seed, p.stop) == (1.3, 0.8, 5, 2, ("y",))


def test_none_fields_do_not_override() -> None:
    p = params({"temperature": None, "top_p": None, "max_tokens": None}, model=info(temperature=0.6, top_p=0.9))
    assert (p.temperature, p.top_p, p.max_tokens) == (0.6, 0.9, 90)


def test_openai_only_fields_pass_through() -> None:
    p = params(
        {"presence_penalty": 0.5, "frequency_penalty": -0.5, "repetition_penalty": 1.2, "top_k": 3, "min_p": 0.2}
    )
    assert (p.presence_penalty, p.frequency_penalty, p.repetition_penalty, p.top_k, p.min_p) == (0.5, -0.5, 1.2, 3, 0.2)


def test_negative_top_k_disables_it() -> None:
    assert params({"top_k": -1}).top_k == 0


# -- do_sample ----------------------------------------------------------------------------------


def test_model_do_sample_false_means_greedy() -> None:
    p = params(model=info(do_sample=False, temperature=0.7))
    assert p.temperature == 0.0 and p.greedy


def test_request_do_sample_false_means_greedy() -> None:
    p = params({"generation_config": {"do_sample": False}}, model=info(temperature=0.7))
    assert p.greedy


def test_explicit_temperature_beats_do_sample_false() -> None:
    p = params({"generation_config": {"do_sample": False}, "temperature": 0.5})
    assert p.temperature == 0.5


def test_request_do_sample_true_overrides_a_greedy_model_default() -> None:
    p = params({"generation_config": '{"do_sample": true}'}, model=info(do_sample=False, temperature=0.7))
    assert p.temperature == 0.7


# -- max_tokens and the context -----------------------------------------------------------------


def test_max_tokens_defaults_to_the_remaining_context() -> None:
    assert params(model=info(max_context=50), prompt_tokens=20).max_tokens == 30


def test_generation_config_max_new_tokens_is_capped_to_what_fits() -> None:
    assert params(model=info(max_context=50, max_new_tokens=1000), prompt_tokens=20).max_tokens == 30
    assert (
        params({"generation_config": {"max_new_tokens": 1000}}, model=info(max_context=50), prompt_tokens=20).max_tokens
        == 30
    )


def test_explicit_max_tokens_that_fits_exactly() -> None:
    assert params({"max_tokens": 30}, model=info(max_context=50), prompt_tokens=20).max_tokens == 30


def test_explicit_max_tokens_that_does_not_fit_is_prompt_too_long() -> None:
    with pytest.raises(PromptTooLong) as exc:
        params({"max_tokens": 31}, model=info(max_context=50), prompt_tokens=20)
    err = exc.value
    assert err.status == 400
    assert err.param == "max_tokens"
    assert err.code == "context_length_exceeded"
    assert "50" in err.message and "51" in err.message


def test_fit_max_tokens_caps_to_the_room_left_instead_of_refusing() -> None:
    fitted = {"max_tokens": 32000, "fit_max_tokens": True}
    assert params(fitted, model=info(max_context=50), prompt_tokens=20).max_tokens == 30
    assert params({**fitted, "max_tokens": 5}, model=info(max_context=50), prompt_tokens=20).max_tokens == 5
    with pytest.raises(PromptTooLong):  # no room at all is still an error
        params(fitted, model=info(max_context=50), prompt_tokens=50)


@pytest.mark.parametrize("prompt_tokens", [50, 51, 500])
def test_prompt_alone_too_long(prompt_tokens: int) -> None:
    with pytest.raises(PromptTooLong) as exc:
        params(model=info(max_context=50), prompt_tokens=prompt_tokens)
    assert exc.value.status == 400
    assert exc.value.param == "messages"
    assert str(prompt_tokens) in exc.value.message


def test_max_tokens_zero_scores_a_prompt_that_fills_the_context() -> None:
    p = params({"max_tokens": 0, "prompt_logprobs": 2}, model=info(max_context=50), prompt_tokens=50)
    assert (p.max_tokens, p.prompt_logprobs) == (0, 2)
    with pytest.raises(PromptTooLong):
        params({"max_tokens": 0}, model=info(max_context=50), prompt_tokens=51)


def test_prompt_too_long_wins_over_an_explicit_max_tokens() -> None:
    with pytest.raises(PromptTooLong) as exc:
        params({"max_tokens": 5}, model=info(max_context=50), prompt_tokens=60)
    assert exc.value.param == "messages"


# -- generation_config validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ("42", "must be a JSON object"),
        ([1, 2], "must be a JSON object"),
        ({"num_beams": 4}, "num_beams"),
        ('{"temperature": 0.5, "output_scores": true}', "output_scores"),
    ],
)
def test_invalid_generation_config(value: Any, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        params({"generation_config": value})
    assert exc.value.param == "generation_config"
    assert exc.value.status == 400
    assert fragment in exc.value.message


def test_parse_generation_config_maps_names_and_drops_nulls() -> None:
    parsed = parse_generation_config({"max_new_tokens": 5, "stop_strings": "x", "do_sample": True, "top_p": None})
    assert parsed == {"max_tokens": 5, "stop": "x", "do_sample": True}
    assert parse_generation_config(None) == {}
    assert parse_generation_config("{}") == {}


def test_unknown_keys_in_model_defaults_are_ignored() -> None:
    p = params(model=info(num_beams=4, temperature=0.5))
    assert p.temperature == 0.5


@pytest.mark.parametrize(
    "config",
    [
        {"temperature": "hot"},
        {"max_new_tokens": "many"},
        {"top_k": "few"},
        {"stop_strings": 5},
    ],
)
def test_wrongly_typed_generation_config_values_are_invalid_requests(config: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as exc:
        params({"generation_config": config})
    assert exc.value.param == "generation_config"


@pytest.mark.parametrize("config", [{"temperature": -1.0}, {"top_p": 5.0}, {"max_new_tokens": -3}])
def test_out_of_range_generation_config_values_are_invalid_requests(config: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as exc:
        params({"generation_config": config})
    assert exc.value.param == "generation_config"


# -- stop, logit_bias, seed, stop_token_ids -----------------------------------------------------


def test_stop_as_string() -> None:
    assert params({"stop": "END"}).stop == ("END",)


def test_stop_as_list_drops_empty_strings() -> None:
    assert params({"stop": ["a", "", "bc"]}).stop == ("a", "bc")


def test_stop_that_is_not_strings_is_invalid() -> None:
    with pytest.raises(InvalidRequest) as exc:
        params({"stop": ["a", 3]})
    assert exc.value.param == "stop"


def test_logit_bias_keys_become_token_ids() -> None:
    p = params({"logit_bias": {"5": 100, "12": -100, "0": 0.5}}, model=info(vocab_size=13))
    assert p.logit_bias == {5: 100.0, 12: -100.0, 0: 0.5}


@pytest.mark.parametrize("key", ["abc", "1.5", ""])
def test_logit_bias_non_integer_key_is_invalid(key: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        params({"logit_bias": {key: 1}})
    assert exc.value.param == "logit_bias"


@pytest.mark.parametrize(("key", "value"), [("-1", 1), ("13", 1), ("100000", 1), ("5", 100.5), ("5", -101)])
def test_logit_bias_out_of_range_is_invalid(key: str, value: float) -> None:
    with pytest.raises(InvalidRequest) as exc:
        params({"logit_bias": {key: value}}, model=info(vocab_size=13))
    assert exc.value.param == "logit_bias"


def test_logit_bias_without_vocab_limit_accepts_large_ids() -> None:
    assert params({"logit_bias": {"100000": 1}}).logit_bias == {100000: 1.0}


def test_default_seed_used_only_without_a_request_seed() -> None:
    assert params(default_seed=11).seed == 11
    assert params({"seed": 3}, default_seed=11).seed == 3
    assert params({"seed": 0}, default_seed=11).seed == 0
    assert params({"generation_config": {"seed": 4}}, default_seed=11).seed == 4
    assert params().seed is None


def test_stop_token_ids_come_from_the_model_eos_ids() -> None:
    assert params().stop_token_ids == EOS
    other = ModelInfo(name="m", max_context=10, eos_token_ids=(), generation_defaults={})
    assert params(model=other, prompt_tokens=1).stop_token_ids == ()


def test_a_reasoning_budget_needs_a_block_and_no_grammar() -> None:
    think = ReasoningMarkers("<think>", "</think>")
    assert params({"reasoning_budget": 64}, reasoning=think).reasoning_budget == 64
    assert params({"reasoning_budget": 64}).reasoning_budget is None  # no reasoning block to end
    assert params({"reasoning_budget": 64}, reasoning=think, grammar="g").reasoning_budget is None
