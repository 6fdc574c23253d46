"""Seeded random texts built from each format's own pieces (well-formed or not): every split of a
text must give the same result as the whole text, and nothing may raise."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from app.parsers.base import OutputParser
from app.parsers.choice import ChoiceParser
from app.parsers.reasoning import GEMMA4, ReasoningParser
from app.parsers.tools.gemma4 import Gemma4ToolParser
from app.parsers.tools.hermes import HermesToolParser
from app.parsers.tools.llama3 import Llama3JsonToolParser
from app.parsers.tools.mistral import MistralToolParser
from app.parsers.tools.qwen3_coder import Qwen3CoderToolParser
from tests.parsers.helpers import random_split, run

PROPS = {"n": {"type": "integer"}, "s": {"type": "string"}}
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": PROPS}}}]
COMMON = [" ", "\n", "a", "hi", "{", "}", "[", "]", '"', ":", ",", "\\", "1", "true", "<", ">", "|", '"f"', "{}", ";"]
FAMILIES: dict[str, tuple[list[str], Callable[[], OutputParser]]] = {
    "think": (["<think>", "</think>", "<th", "</thi"], ReasoningParser),
    "think-inside": (["<think>", "</think>", "</th"], lambda: ReasoningParser(inside=True)),
    "gemma-channel": (["<|channel>", "<channel|>", "thought", "thought\n"], GEMMA4),
    "hermes": (
        ["<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_", '{"name": "f", "arguments": {', '"name"'],
        lambda: ChoiceParser(ReasoningParser(), HermesToolParser(TOOLS)),
    ),
    "qwen3-coder": (
        ["<tool_call>", "</tool_call>", "<function=f>", "</function>", "<parameter=n>", "</parameter>", "<param"],
        lambda: Qwen3CoderToolParser(TOOLS),
    ),
    "gemma4": (["<|tool_call>", "<tool_call|>", "call:f{", '<|"|>', "<|", "n:", "s:"], lambda: Gemma4ToolParser(TOOLS)),
    "llama3": (["<|python_tag|>", '{"name": "f", "parameters": {', "<|py"], lambda: Llama3JsonToolParser(TOOLS)),
    "mistral": (
        ["[TOOL_CALLS]", "[ARGS]", "[CALL_ID]", "f", '[{"name": "f", "arguments": {', "[TOOL_"],
        lambda: MistralToolParser(TOOLS),
    ),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_random_texts_parse_the_same_in_every_split(family: str) -> None:
    pieces, make = FAMILIES[family]
    vocabulary = pieces * 3 + COMMON
    for seed in range(120):
        rng = random.Random(seed)
        text = "".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 40)))
        whole = run(make(), [text])
        for split in [list(text)] + [random_split(text, random.Random(seed * 7 + k), 5) for k in range(4)]:
            assert run(make(), split) == whole, (text, split)
