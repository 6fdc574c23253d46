"""Stop strings and incremental detokenization (the real tiny tokenizer for the latter)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.engine.process.detokenizer import IncrementalDetokenizer, ReasoningSplitter, StopMatcher, TextAssembler
from app.engine.types import ReasoningMarkers
from tests.support.models import CHAT_MODEL_ID, load_tokenizer

# ---------------------------------------------------------------------------------------------
# StopMatcher (pure text)
# ---------------------------------------------------------------------------------------------


def feed_all(matcher: StopMatcher, pieces: list[str]) -> tuple[list[str], bool]:
    """Feeds pieces until a stop hits; returns what was emitted for each piece fed and whether it stopped."""
    emitted = []
    for piece in pieces:
        text, stopped = matcher.feed(piece)
        emitted.append(text)
        if stopped:
            return emitted, True
    return emitted, False


def test_no_stops_passes_text_through_unchanged() -> None:
    matcher = StopMatcher([])
    assert matcher.feed("Hello") == ("Hello", False)
    assert matcher.feed(" wor") == (" wor", False)
    assert matcher.flush() == ""


def test_empty_stop_strings_are_ignored() -> None:
    matcher = StopMatcher(["", ""])
    assert matcher.feed("abc") == ("abc", False)


def test_stop_inside_one_piece_trims_it_and_what_follows() -> None:
    matcher = StopMatcher(["STOP"])
    assert matcher.feed("Hello ") == ("Hello ", False)
    assert matcher.feed("worldSTOP and more") == ("world", True)
    assert matcher.flush() == ""


def test_the_stop_that_ended_the_output_is_kept() -> None:
    matcher = StopMatcher(["never", "end", "nd."])
    assert matcher.matched is None
    assert matcher.feed("The end.") == ("The ", True)  # the earliest match wins
    assert matcher.matched == "end"


def test_stop_at_the_very_start_emits_nothing() -> None:
    matcher = StopMatcher(["\n\n"])
    assert matcher.feed("\n\nrest") == ("", True)


def test_stop_split_across_pieces_is_held_back_then_trimmed() -> None:
    matcher = StopMatcher(["</end>"])
    assert matcher.feed("answer</") == ("answer", False)  # "</" might start the stop
    assert matcher.feed("en") == ("", False)  # "</en" still might
    assert matcher.feed("d>tail") == ("", True)  # the held "</en" is the stop: dropped
    assert matcher.flush() == ""


def test_stop_split_over_many_single_character_pieces() -> None:
    emitted, stopped = feed_all(StopMatcher(["xyz"]), list("abxyzcd"))
    assert stopped
    assert "".join(emitted) == "ab"


def test_partial_prefix_is_released_when_the_text_diverges() -> None:
    matcher = StopMatcher(["</end>"])
    assert matcher.feed("a </e") == ("a ", False)
    assert matcher.feed("lse") == ("</else", False)


def test_partial_prefix_is_released_at_flush_when_no_stop_follows() -> None:
    matcher = StopMatcher(["STOP"])
    assert matcher.feed("Hello ST") == ("Hello ", False)
    assert matcher.flush() == "ST"
    assert matcher.flush() == ""  # flushing empties the buffer


def test_longest_partial_match_is_held() -> None:
    # "aab" ends with "a" and with "aa" (both prefixes of "aaa"): the longer one must be held.
    matcher = StopMatcher(["aaa"])
    assert matcher.feed("baa") == ("b", False)
    assert matcher.feed("a") == ("", True)


def test_multiple_stops_earliest_occurrence_wins() -> None:
    matcher = StopMatcher(["world", "lo"])
    assert matcher.feed("hello world") == ("hel", True)


def test_multiple_stops_hold_back_the_longest_candidate() -> None:
    matcher = StopMatcher(["cd", "bcdef"])
    assert matcher.feed("abc") == ("a", False)
    # "bcd" + "z": "cd" is found first (at offset 1 of the buffer "bcdz"), "bcdef" no longer can.
    assert matcher.feed("dz") == ("b", True)


def test_text_without_any_stop_is_emitted_in_full() -> None:
    emitted, stopped = feed_all(StopMatcher(["STOP", "END"]), ["The ", "S", "T", "O", "ne ", "E", "N", "gine"])
    assert not stopped
    assert "".join(emitted) == "The STOne ENgine"


# ---------------------------------------------------------------------------------------------
# IncrementalDetokenizer / TextAssembler (real tiny tokenizer)
# ---------------------------------------------------------------------------------------------

MULTIBYTE_TEXTS = [
    "héllo wörld 日本語 🙂🚀",
    "Ünïcödé ✓ — “quotes” … 𝄞♫",
    "emoji family 👨‍👩‍👧 flag 🇫🇷 and text",
    "Paris is the capital of France. 東京は日本の首都です。",
]


@pytest.fixture(scope="module")
def tokenizer(hf_home: Path) -> Any:
    return load_tokenizer(hf_home, CHAT_MODEL_ID)


def encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize("text", MULTIBYTE_TEXTS)
def test_token_by_token_never_yields_broken_utf8(tokenizer: Any, text: str) -> None:
    ids = encode(tokenizer, text)
    assert len(ids) > len(text.split())  # multi-byte characters span several byte-level tokens
    detok = IncrementalDetokenizer(tokenizer)
    pieces = [detok.step(token) for token in ids]
    assert all("\ufffd" not in piece for piece in pieces), pieces
    assert "" in pieces  # some tokens complete no character: their text is held back
    assert "".join(pieces) == tokenizer.decode(ids, skip_special_tokens=True) == text


def test_single_tokens_of_a_multibyte_character_are_partial(tokenizer: Any) -> None:
    """Guards the test above: decoding the tokens one by one really would produce U+FFFD."""
    ids = encode(tokenizer, "日本語 🙂")
    assert any("\ufffd" in tokenizer.decode([token]) for token in ids)


def test_special_tokens_are_skipped(tokenizer: Any) -> None:
    text = "<|im_start|>assistant\nHello!<|im_end|>"
    ids = encode(tokenizer, text)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert ids[-1] == im_end
    detok = IncrementalDetokenizer(tokenizer)
    pieces = [detok.step(token) for token in ids]
    assert pieces[-1] == ""
    assert "".join(pieces) == "assistant\nHello!" == tokenizer.decode(ids, skip_special_tokens=True)


def test_non_special_added_tokens_are_kept(tokenizer: Any) -> None:
    text = "<think>\nreasoning\n</think>\n\n<tool_call>\n{}\n</tool_call>"
    ids = encode(tokenizer, text)
    assert tokenizer.convert_tokens_to_ids("<think>") in ids
    detok = IncrementalDetokenizer(tokenizer)
    pieces = [detok.step(token) for token in ids]
    assert pieces[0] == "<think>"
    assert "".join(pieces) == text == tokenizer.decode(ids, skip_special_tokens=True)


class _SlowTokenizer:
    """A tokenizer without a fast backend (``_tokenizer``): exercises the re-decode fallback."""

    def __init__(self, fast: Any) -> None:
        self._fast = fast

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self._fast.decode(ids, skip_special_tokens=skip_special_tokens)


@pytest.mark.parametrize("text", [*MULTIBYTE_TEXTS, "<think>\nx\n</think>\n\ny<|im_end|>"])
def test_slow_tokenizer_fallback_matches_full_decode(tokenizer: Any, text: str) -> None:
    ids = encode(tokenizer, text)
    detok = IncrementalDetokenizer(_SlowTokenizer(tokenizer))
    pieces = [detok.step(token) for token in ids]
    assert all("\ufffd" not in piece for piece in pieces)
    assert "".join(pieces) == tokenizer.decode(ids, skip_special_tokens=True)


def test_text_assembler_trims_a_stop_that_spans_tokens(tokenizer: Any) -> None:
    text = "The capital of France is Paris. Berlin is the capital of Germany."
    ids = encode(tokenizer, text)
    assembler = TextAssembler(tokenizer, ["Berlin"])
    emitted, stopped = [], False
    for token in ids:
        piece, stopped = assembler.add(token)
        emitted.append(piece)
        if stopped:
            break
    assert stopped
    assert "".join(emitted) == "The capital of France is Paris. "
    assert assembler.finish() == ""


def test_text_assembler_releases_held_text_at_finish(tokenizer: Any) -> None:
    ids = encode(tokenizer, "héllo wörld 🙂")
    assembler = TextAssembler(tokenizer, ["🙂🚀"])  # the text ends with a prefix of the stop
    emitted = []
    for token in ids:
        piece, stopped = assembler.add(token)
        assert not stopped
        emitted.append(piece)
    assert "".join(emitted) == "héllo wörld "
    assert assembler.finish() == "🙂"


# ---------------------------------------------------------------------------------------------
# Reasoning blocks: stop strings apply to the content only
# ---------------------------------------------------------------------------------------------

THINK = ReasoningMarkers("<think>", "</think>")
THINK_OPEN = ReasoningMarkers("<think>", "</think>", open=True)


def test_splitter_marks_a_block_its_markers_and_the_whitespace_after_it_as_reasoning() -> None:
    splitter = ReasoningSplitter(THINK)
    segments = splitter.feed("Hi <think>\nwhy\n</think>\n\nanswer", final=True)
    assert segments == [("Hi ", False), ("<think>\nwhy\n</think>", True), ("\n\n", True), ("answer", False)]


def test_splitter_holds_back_a_partial_marker_across_pieces() -> None:
    splitter = ReasoningSplitter(THINK_OPEN)
    assert splitter.feed("step one</th") == [("step one", True)]
    assert splitter.feed("ink>\n\nok") == [("</think>", True), ("\n\n", True), ("ok", False)]
    assert splitter.feed("<thi") == []
    assert splitter.feed("", final=True) == [("<thi", False)]


def assemble(tokenizer: Any, text: str, stops: list[str], markers: ReasoningMarkers | None) -> tuple[str, bool]:
    assembler = TextAssembler(tokenizer, stops, reasoning=markers)
    emitted = []
    for token in encode(tokenizer, text):
        piece, stopped = assembler.add(token)
        emitted.append(piece)
        if stopped:
            return "".join(emitted) + assembler.finish(), True
    return "".join(emitted) + assembler.finish(), False


REASONED = "<think>\nCount: one\n\ntwo.\n</think>\n\none, two\n\nthree"


def test_a_stop_inside_the_reasoning_block_is_not_matched(tokenizer: Any) -> None:
    text, stopped = assemble(tokenizer, REASONED, ["\n\n"], THINK)
    assert stopped
    assert text == "<think>\nCount: one\n\ntwo.\n</think>\n\none, two"


def test_a_block_the_prompt_opened_is_skipped_up_to_its_end(tokenizer: Any) -> None:
    text, stopped = assemble(tokenizer, REASONED.removeprefix("<think>"), ["two"], THINK_OPEN)
    assert stopped
    assert text == "\nCount: one\n\ntwo.\n</think>\n\none, "


def test_without_markers_the_stop_matches_inside_the_block(tokenizer: Any) -> None:
    text, stopped = assemble(tokenizer, REASONED, ["\n\n"], None)
    assert stopped
    assert text == "<think>\nCount: one"


def test_output_without_a_block_is_all_content(tokenizer: Any) -> None:
    text, stopped = assemble(tokenizer, "one\n\ntwo", ["\n\n"], THINK)
    assert (text, stopped) == ("one", True)
    text, stopped = assemble(tokenizer, "one two", ["\n\n"], THINK)
    assert (text, stopped) == ("one two", False)


def _reasoning_tokens(tokenizer: Any, text: str, markers: ReasoningMarkers | None) -> tuple[int, str]:
    assembler = TextAssembler(tokenizer, [], reasoning=markers)
    emitted = "".join(assembler.add(token)[0] for token in encode(tokenizer, text)) + assembler.finish()
    return assembler.reasoning_tokens, emitted


def test_the_tokens_inside_the_block_are_counted_one_by_one(tokenizer: Any) -> None:
    block = "<think>\nCount: one\n\ntwo.\n</think>\n\n"
    count, emitted = _reasoning_tokens(tokenizer, block + "one, two", THINK)
    assert emitted == block + "one, two"  # without stop strings the text is untouched
    assert count == len(encode(tokenizer, block))  # the block, its markers and the whitespace after it
    assert _reasoning_tokens(tokenizer, "one, two", THINK)[0] == 0
    opened, _ = _reasoning_tokens(tokenizer, REASONED.removeprefix("<think>"), THINK_OPEN)
    assert opened == len(encode(tokenizer, block.removeprefix("<think>")))
    assert _reasoning_tokens(tokenizer, REASONED, None)[0] == 0  # no reasoning parser: nothing is reasoning


def test_a_spent_reasoning_budget_asks_for_the_blocks_end_once(tokenizer: Any) -> None:
    assembler = TextAssembler(tokenizer, [], reasoning=THINK_OPEN)
    end = tokenizer.encode("</think>", add_special_tokens=False)
    asked = []
    for token in encode(tokenizer, "\nCount: one\n\ntwo.\n"):
        assembler.add(token)
        asked.append(assembler.reasoning_overrun(3))
    assert asked[:2] == [[], []]  # two tokens into the block: within the budget
    assert asked[2] == end  # the third spends it
    assert all(ids == [] for ids in asked[3:])  # asked for once


def test_no_budget_is_spent_outside_a_block(tokenizer: Any) -> None:
    assembler = TextAssembler(tokenizer, [], reasoning=THINK)
    for token in encode(tokenizer, "one, two, three"):
        assembler.add(token)
        assert assembler.reasoning_overrun(1) == []
    plain = TextAssembler(tokenizer, [])  # no reasoning parser
    for token in encode(tokenizer, "<think>\none"):
        plain.add(token)
        assert plain.reasoning_overrun(1) == []
