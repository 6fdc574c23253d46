"""Engine value types with behaviour: a backlog of token events merged into one, and greedy sampling."""

from __future__ import annotations

import dataclasses
import pickle

from app.engine.types import PromptLogprob, SamplingParams, TokenEvent, TokenLogprob


def test_merged_joins_tokens_text_and_logprobs_in_order() -> None:
    first = TokenEvent("req", (1,), "He", 2, (TokenLogprob(1, "He", -0.1),), ((TokenLogprob(1, "He", -0.1),),))
    later = TokenEvent("other", (2, 3), "llo", 5, (TokenLogprob(2, "l", -0.2), TokenLogprob(3, "lo", -0.3)), ())
    merged = first.merged(later)
    assert merged.request_id == "req" and merged.index == 2  # the earlier event's identity
    assert merged.token_ids == (1, 2, 3) and merged.token_id == 3
    assert merged.text == "Hello"
    assert [p.token_id for p in merged.logprobs] == [1, 2, 3]
    assert merged.top_logprobs == first.top_logprobs
    assert first.token_ids == (1,)  # events are values: merging makes a new one


def test_merging_an_event_with_held_back_text() -> None:
    held = TokenEvent("req", (7,), "")
    assert held.merged(TokenEvent("req", (8,), "ab")) == TokenEvent("req", (7, 8), "ab")


def test_merging_keeps_the_prompt_logprobs_of_the_first_event() -> None:
    prompt = (PromptLogprob(4, "A", None, None), PromptLogprob(5, "B", -0.5, 1))
    first, later = TokenEvent("req", (1,), "a", prompt_logprobs=prompt), TokenEvent("req", (2,), "b")
    assert first.merged(later).prompt_logprobs == prompt
    assert later.merged(first).prompt_logprobs == prompt  # wherever it was, a merged backlog keeps it


def test_greedy_means_temperature_zero_or_too_small_to_divide_by() -> None:
    assert SamplingParams(max_tokens=4, temperature=0.0).greedy
    assert SamplingParams(max_tokens=4, temperature=2.4e-46).greedy  # logits / it would be inf
    assert not SamplingParams(max_tokens=4).greedy
    assert not SamplingParams(max_tokens=4, temperature=0.01, top_k=1).greedy


def test_a_token_event_crosses_the_pipe_whole() -> None:
    top = ((TokenLogprob(1, "He", -0.1), TokenLogprob(2, "Ha", -2.0)),)
    prompt = (PromptLogprob(7, "x", None, None, ()),)
    event = TokenEvent("req", (1,), "He", 2, (TokenLogprob(1, "He", -0.1),), top, prompt)
    again = pickle.loads(pickle.dumps(event, protocol=pickle.HIGHEST_PROTOCOL))
    assert again == event
    assert [getattr(again, f.name) for f in dataclasses.fields(TokenEvent)] == list(event.__reduce__()[1])
