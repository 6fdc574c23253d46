"""CompletionService: prompt forms, refusals, and its run loop over scripted streams (several prompts,
echo, logprob text offsets, usage)."""

from __future__ import annotations

import pytest

from app.engine.types import FinishEvent, PromptLogprob, TokenEvent, TokenLogprob
from app.errors import InvalidRequest, UnsupportedParameter
from app.protocol.completions import CompletionRequest
from app.serving.completions import CompletionService, PreparedCompletion, to_generation_spec
from app.serving.prepare import TextInput
from tests.serving.scripted import closed, prepared


def _request(**fields: object) -> CompletionRequest:
    return CompletionRequest.model_validate({"prompt": "hi", **fields})


def _service() -> CompletionService:
    return CompletionService(preparer=None)  # type: ignore[arg-type]


def _token(text: str, rid: str = "req-1-0") -> TokenEvent:
    return TokenEvent(rid, (1,), text, 0, (TokenLogprob(1, text, -1.0),), ((),))


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("hi", TextInput(texts=("hi",))),
        (["a", "b"], TextInput(texts=("a", "b"))),
        ([1, 2], TextInput(token_ids=((1, 2),))),
        ([[1], [2, 3]], TextInput(token_ids=((1,), (2, 3)))),
    ],
)
def test_prompt_forms(prompt: object, expected: TextInput) -> None:
    assert to_generation_spec(_request(prompt=prompt)).prompt == expected


def test_suffix_and_echo_are_described() -> None:
    spec = to_generation_spec(_request(suffix="end", echo=True, max_tokens=3))
    assert spec.prompt == TextInput(texts=("hi",), suffix="end", echo=True)
    assert spec.sampling["max_tokens"] == 3 and spec.sampling["logprobs"] is None


@pytest.mark.parametrize(
    ("fields", "error", "param"),
    [
        ({"best_of": 2}, UnsupportedParameter, "best_of"),
        ({"max_tokens": 0}, InvalidRequest, "max_tokens"),
        ({"prompt_logprobs": 1, "stream": True}, InvalidRequest, "prompt_logprobs"),
        ({"prompt": ["a"], "suffix": "x"}, InvalidRequest, "suffix"),
    ],
)
def test_refusals(fields: dict[str, object], error: type[Exception], param: str) -> None:
    with pytest.raises(error) as caught:
        to_generation_spec(_request(**fields))
    assert caught.value.param == param  # type: ignore[attr-defined]


async def test_complete_joins_text_after_the_echo_and_offsets_logprobs() -> None:
    g = prepared(
        [_token("ab"), _token("c"), FinishEvent("req-1-0", "stop", 2, 2, "d")],
        [_token("x", "req-1-1"), FinishEvent("req-1-1", "length", 2, 1)],
        logprobs=0,
        echoes=("P:", "Q"),
    )
    completion = await _service().complete(PreparedCompletion(g, include_usage=False))
    first, second = completion.choices
    assert (first.text, first.finish_reason, second.text, second.finish_reason) == ("P:abcd", "stop", "Qx", "length")
    assert first.logprobs.text_offset == [2, 4] and second.logprobs.text_offset == [1]
    assert completion.usage.prompt_tokens == 6 and completion.usage.completion_tokens == 3 and closed(g)


async def test_stream_echoes_first_then_offsets_then_usage() -> None:
    g = prepared([_token("ab"), FinishEvent("req-1-0", "stop", 2, 1)], logprobs=0, echoes=("P:",))
    chunks = [chunk async for chunk in _service().stream(PreparedCompletion(g, include_usage=True))]
    assert [c.choices[0].text for c in chunks[:3]] == ["P:", "ab", ""]
    assert chunks[1].choices[0].logprobs.text_offset == [2] and chunks[2].choices[0].finish_reason == "stop"
    assert chunks[3].usage.completion_tokens == 1 and closed(g)


def test_echo_with_logprobs_and_prompt_logprobs_ask_the_engine_to_score_the_prompt() -> None:
    assert to_generation_spec(_request(echo=True, logprobs=1)).sampling["prompt_logprobs"] == 1
    assert to_generation_spec(_request(echo=True, logprobs=1, prompt_logprobs=3)).sampling["prompt_logprobs"] == 3
    assert "prompt_logprobs" not in to_generation_spec(_request(logprobs=1)).sampling  # no echo: not scored
    spec = to_generation_spec(_request(echo=True, max_tokens=0))
    assert spec.sampling["max_tokens"] == 0 and "prompt_logprobs" not in spec.sampling


_SCORED = (
    PromptLogprob(7, "P", None, None),
    PromptLogprob(8, ":", -0.5, 2, (TokenLogprob(9, "!", -0.25), TokenLogprob(8, ":", -0.5))),
)


async def test_echoed_prompt_logprobs_lead_the_choice() -> None:
    first = TokenEvent("req-1-0", (1,), "ab", 0, (TokenLogprob(1, "ab", -1.0),), ((),), _SCORED)
    g = prepared([first, FinishEvent("req-1-0", "length", 2, 1)], logprobs=1, echoes=("P:",))
    p = PreparedCompletion(g, include_usage=False, echo_logprobs=1, prompt_logprobs=1)
    choice = (await _service().complete(p)).choices[0]
    assert choice.text == "P:ab"
    assert choice.logprobs.tokens == ["P", ":", "ab"] and choice.logprobs.token_logprobs == [None, -0.5, -1.0]
    assert choice.logprobs.top_logprobs == [None, {"!": -0.25, ":": -0.5}, {}]
    assert choice.logprobs.text_offset == [0, 1, 2]
    assert choice.prompt_logprobs[0] is None
    assert {k: v.model_dump() for k, v in choice.prompt_logprobs[1].items()} == {
        "8": {"logprob": -0.5, "rank": 2, "decoded_token": ":"},
        "9": {"logprob": -0.25, "rank": 1, "decoded_token": "!"},
    }


async def test_max_tokens_zero_streams_the_echo_with_its_logprobs() -> None:
    g = prepared([FinishEvent("req-1-0", "length", 2, 0, prompt_logprobs=_SCORED)], logprobs=0, echoes=("P:",))
    p = PreparedCompletion(g, include_usage=False, echo_logprobs=0)
    chunks = [chunk async for chunk in _service().stream(p)]
    assert [c.choices[0].text for c in chunks] == ["P:", ""]
    assert chunks[0].choices[0].logprobs.token_logprobs == [None, -0.5]
    assert chunks[0].choices[0].logprobs.top_logprobs == [None, {":": -0.5}]
    assert chunks[1].choices[0].finish_reason == "length"
