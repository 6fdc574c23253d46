"""Reasoning separation: delimiters, whitespace rules, inside mode, Gemma 4 channels."""

from __future__ import annotations

import pytest

from app.parsers.base import ParsedDelta
from app.parsers.reasoning import GEMMA4, THINK, ReasoningParser
from tests.parsers.helpers import Outcome, parse_all_ways

THINK_MARKERS = ("<think>", "</think>")
GEMMA_MARKERS = ("<|channel>", "<channel|>")


def think(text: str, *, inside: bool = False) -> Outcome:
    return parse_all_ways(lambda: ReasoningParser(inside=inside), text, THINK_MARKERS)


@pytest.mark.parametrize(
    ("text", "reasoning", "content"),
    [
        ("<think>\nThe user greets.\n</think>\n\nHello!", "The user greets.", "Hello!"),
        ("<think>\nline one\n\n  line two \n</think>\n\n answer", "line one\n\n  line two", "answer"),
        ("  \n<think>a</think>b", "a", "b"),
        ("<think>\n\n</think>\n\nHi", "", "Hi"),
        ("<think>unfinished thought  \n", "unfinished thought", ""),
        ("Hi <think>aside</think>there", "aside", "Hi there"),
        ("<think>a</think>b<think>c</think>d", "ac", "bd"),
        ("<think>x < y and </thinking> is not the end</think>ok", "x < y and </thinking> is not the end", "ok"),
    ],
)
def test_think_blocks(text: str, reasoning: str, content: str) -> None:
    assert think(text) == Outcome(content=content, reasoning=reasoning)


@pytest.mark.parametrize(
    "text",
    ["Just an answer.", "  leading space kept", "a < b <th and <think", "x\n\n", "", "</think"],
)
def test_no_start_delimiter_means_all_content(text: str) -> None:
    assert think(text) == Outcome(content=text)


@pytest.mark.parametrize("text", ["abc</think>def", "</think>", "a</think>b</think>", "<think>r</think>a</think>b"])
def test_an_end_delimiter_with_no_block_open_is_kept_as_content(text: str) -> None:
    reasoning = "r" if text.startswith("<think>") else ""
    content = text.removeprefix("<think>r</think>")
    outcome = parse_all_ways(ReasoningParser, text, ("<think>",))  # the end delimiter stays in the content
    assert outcome == Outcome(content=content, reasoning=reasoning)


def test_a_gemma_end_delimiter_with_no_channel_open_is_kept_as_content() -> None:
    outcome = parse_all_ways(GEMMA4, "plain<channel|> text", ("<|channel>",))
    assert outcome == Outcome(content="plain<channel|> text")


@pytest.mark.parametrize(
    ("text", "reasoning", "content"),
    [
        ("\nThe question is easy.\n</think>\n\nParis.", "The question is easy.", "Paris."),
        ("<think>\nrepeated start\n</think>\n\nok", "repeated start", "ok"),
        ("never closed \n ", "never closed", ""),
        ("</think>\n\nno reasoning at all", "", "no reasoning at all"),
        ("<thinking is a word>", "<thinking is a word>", ""),
    ],
)
def test_inside_starts_as_reasoning(text: str, reasoning: str, content: str) -> None:
    assert think(text, inside=True) == Outcome(content=content, reasoning=reasoning)


def test_partial_delimiters_are_held_back_until_disambiguated() -> None:
    parser = ReasoningParser()
    assert parser.feed("Hello <th") == [ParsedDelta(content="Hello ")]
    assert parser.feed("ink>") == []
    assert parser.feed("deep \n") == [ParsedDelta(reasoning="deep")]
    assert parser.feed("thought</th") == [ParsedDelta(reasoning=" \nthought")]
    assert parser.feed("ink>\n\n") == []
    assert parser.feed("Done <t") == [ParsedDelta(content="Done ")]
    assert parser.finish() == [ParsedDelta(content="<t")]


def test_trailing_reasoning_whitespace_waits_for_more_reasoning() -> None:
    parser = ReasoningParser(inside=True)
    assert parser.feed("a \n") == [ParsedDelta(reasoning="a")]
    assert parser.feed("\n") == []
    assert parser.feed("b") == [ParsedDelta(reasoning=" \n\nb")]
    assert parser.feed("\n</think>") == []
    assert parser.finish() == []


def test_whitespace_only_lead_is_released_when_no_reasoning_follows() -> None:
    parser = ReasoningParser()
    assert parser.feed("\n") == []
    assert parser.feed("Hi") == [ParsedDelta(content="\nHi")]


def test_custom_delimiters() -> None:
    got = parse_all_ways(lambda: ReasoningParser("[THINK]", "[/THINK]"), "[THINK]plan[/THINK]answer", ("[THINK]",))
    assert got == Outcome(content="answer", reasoning="plan")


def test_empty_delimiters_are_rejected() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        ReasoningParser("", "</think>")


@pytest.mark.parametrize(
    ("text", "reasoning", "content"),
    [
        ("<|channel>thought\nLet me think.\n<channel|>The answer.", "Let me think.", "The answer."),
        ("<|channel>thoughtful point<channel|>x", "thoughtful point", "x"),
        ("<|channel>thought\n<channel|>Hi", "", "Hi"),
        ("No thinking here.", "", "No thinking here."),
        ("<|channel>thought\nstill going", "still going", ""),
    ],
)
def test_gemma4_channel(text: str, reasoning: str, content: str) -> None:
    assert parse_all_ways(GEMMA4, text, GEMMA_MARKERS) == Outcome(content=content, reasoning=reasoning)


def test_gemma4_channel_label_split_across_pieces() -> None:
    parser = GEMMA4()
    assert parser.feed("<|chan") == []
    assert parser.feed("nel>thou") == []
    assert parser.feed("ght") == []
    assert parser.feed("\nStep 1") == [ParsedDelta(reasoning="Step 1")]
    assert parser.feed("<channel|>Done") == [ParsedDelta(content="Done")]


def test_factory_and_formats() -> None:
    gemma = GEMMA4()
    assert (gemma.start, gemma.end, gemma.label) == ("<|channel>", "<channel|>", "thought\n")
    parser = THINK(inside=True)
    assert type(parser) is ReasoningParser and (parser.start, parser.end) == ("<think>", "</think>")
    assert THINK.markers == ("<think>", "</think>") and GEMMA4.markers == ("<|channel>", "<channel|>")
    assert parse_all_ways(lambda: THINK(inside=True), "r</think>c") == Outcome(content="c", reasoning="r")
    assert parse_all_ways(GEMMA4, "<|channel>thought\nr<channel|>c") == Outcome(content="c", reasoning="r")


@pytest.mark.parametrize(
    ("fmt", "prompt", "opened"),
    [
        (THINK, "<|im_start|>assistant\n<think>\n", True),
        (THINK, "<|im_start|>assistant\n<think>\n\n</think>\n\n", False),
        (THINK, "<|im_start|>assistant\n", False),
        (GEMMA4, "<|turn>model\n<|channel>thought\n", True),
        (GEMMA4, "<|turn>model\n<|channel>thought\n<channel|>", False),
    ],
)
def test_opened_by_prompt(fmt, prompt: str, opened: bool) -> None:
    assert fmt.opened_by(prompt) is opened
