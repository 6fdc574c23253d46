"""Engine logprobs in the chat format and in the completions format (text offsets across steps)."""

from __future__ import annotations

from app.engine.types import TokenEvent, TokenLogprob
from app.serving.logprobs import completion_logprobs, joined, token_logprobs

HI = TokenLogprob(1, "Hi", -0.5)
THERE = TokenLogprob(2, " there", -1.0)
ALT = TokenLogprob(3, "Yo", -2.0)


def _event(*chosen: TokenLogprob) -> TokenEvent:
    return TokenEvent(
        "r", tuple(t.token_id for t in chosen), "".join(t.token for t in chosen), 0, chosen, ((ALT,),) * len(chosen)
    )


def test_chat_format_has_bytes_and_alternatives() -> None:
    [entry] = token_logprobs(_event(HI))
    assert (entry.token, entry.logprob, entry.bytes) == ("Hi", -0.5, [72, 105])
    assert [(t.token, t.logprob, t.bytes) for t in entry.top_logprobs] == [("Yo", -2.0, [89, 111])]


def test_completions_format_counts_offsets_from_where_the_step_starts() -> None:
    first = completion_logprobs(_event(HI, THERE), offset=4)
    assert first.tokens == ["Hi", " there"] and first.text_offset == [4, 6]
    assert first.token_logprobs == [-0.5, -1.0] and first.top_logprobs == [{"Yo": -2.0}, {"Yo": -2.0}]
    whole = joined([first, completion_logprobs(_event(HI), offset=12)])
    assert whole.tokens == ["Hi", " there", "Hi"] and whole.text_offset == [4, 6, 12]
