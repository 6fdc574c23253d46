"""Choosing parsers from a model's traits, and by name."""

from __future__ import annotations

import pytest

from app.demo.chat_template import CHAT_TEMPLATE
from app.demo.tokenizer import SPECIAL_TOKENS, TEXT_ADDED_TOKENS
from app.parsers.reasoning import GEMMA4, THINK
from app.parsers.registry import (
    REASONING_PARSERS,
    TOOL_PARSERS,
    ParserRegistry,
    select_reasoning_parser,
    select_tool_parser,
)
from app.parsers.tools.gemma4 import Gemma4ToolParser
from app.parsers.tools.hermes import HermesToolParser
from app.parsers.tools.llama3 import Llama3JsonToolParser
from app.parsers.tools.mistral import MistralToolParser
from app.parsers.tools.qwen3_coder import Qwen3CoderToolParser
from app.parsers.traits import ModelTraits

QWEN3_TOKENS = frozenset({"<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>", "<think>", "</think>"})
QWEN3_CODER_TEMPLATE = "{{- '<tool_call>\\n<function=' + tool_call.name + '>\\n' }}"
GEMMA4_TOKENS = frozenset({"<|turn>", "<turn|>", "<|tool_call>", "<tool_call|>", '<|"|>', "<|channel>", "<channel|>"})


def test_names() -> None:
    assert TOOL_PARSERS.names() == ("qwen3_coder", "hermes", "mistral", "llama3_json", "gemma4")
    assert REASONING_PARSERS.names() == ("think", "gemma4")


@pytest.mark.parametrize(
    ("traits", "expected"),
    [
        (ModelTraits("qwen3", QWEN3_TOKENS, "{{ messages }}"), HermesToolParser),
        (ModelTraits("qwen2", frozenset(), '... <tool_call>\\n{"name": ...'), HermesToolParser),
        (ModelTraits("qwen3_moe", QWEN3_TOKENS, QWEN3_CODER_TEMPLATE), Qwen3CoderToolParser),
        (ModelTraits("mistral", frozenset({"[TOOL_CALLS]", "[ARGS]"}), ""), MistralToolParser),
        (ModelTraits("llama", frozenset({"<|python_tag|>", "<|eot_id|>"}), ""), Llama3JsonToolParser),
        (ModelTraits("llama", frozenset(), '{"name": ..., "parameters": ...}'), Llama3JsonToolParser),
        (ModelTraits("llama", frozenset({"<tool_call>", "<|python_tag|>"}), ""), HermesToolParser),
        (ModelTraits("gemma4", frozenset(), ""), Gemma4ToolParser),
        (ModelTraits("gemma4_text", frozenset(), ""), Gemma4ToolParser),
        (ModelTraits("custom", GEMMA4_TOKENS, ""), Gemma4ToolParser),
        (ModelTraits("llama", frozenset(), "plain template"), None),
        (ModelTraits("gpt2", frozenset(), ""), None),
        (ModelTraits(), None),
    ],
)
def test_tool_parser_detection(traits: ModelTraits, expected: object) -> None:
    assert select_tool_parser(traits) is expected


def test_the_tiny_test_model_gets_hermes_and_think() -> None:
    traits = ModelTraits("qwen3", frozenset(SPECIAL_TOKENS + TEXT_ADDED_TOKENS), CHAT_TEMPLATE)
    assert select_tool_parser(traits) is HermesToolParser
    assert select_reasoning_parser(traits) is THINK


@pytest.mark.parametrize(
    ("traits", "expected"),
    [
        (ModelTraits("qwen3", QWEN3_TOKENS, ""), THINK),
        (ModelTraits("qwen2", frozenset({"<tool_call>"}), ""), None),
        (ModelTraits("x", frozenset({"<think>"}), ""), None),
        (ModelTraits("custom", GEMMA4_TOKENS, ""), GEMMA4),
        (ModelTraits("gemma4", frozenset(), ""), GEMMA4),
        (ModelTraits("llama", frozenset({"<|python_tag|>"}), ""), None),
    ],
)
def test_reasoning_detection(traits: ModelTraits, expected: object) -> None:
    assert select_reasoning_parser(traits) is expected


def test_override_wins_over_detection() -> None:
    qwen = ModelTraits("qwen3", QWEN3_TOKENS, "")
    assert select_tool_parser(qwen, "mistral") is MistralToolParser
    assert select_tool_parser(qwen, "llama3") is Llama3JsonToolParser
    assert select_tool_parser(qwen, "qwen3_xml") is Qwen3CoderToolParser
    assert select_tool_parser(ModelTraits(), "gemma4") is Gemma4ToolParser
    assert select_tool_parser(qwen, None) is HermesToolParser
    assert REASONING_PARSERS.get("deepseek_r1") is THINK


def test_unknown_override_lists_the_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown tool-call parser 'nope'; known: qwen3_coder, hermes, mistral"):
        select_tool_parser(ModelTraits(), "nope")
    with pytest.raises(ValueError, match=r"unknown reasoning parser 'x'; known: think, gemma4"):
        REASONING_PARSERS.get("x")


def test_registry_rejects_duplicate_names() -> None:
    registry: ParserRegistry[int] = ParserRegistry("thing")
    registry.register("a", 1, lambda t: False, aliases=("b",))
    with pytest.raises(ValueError, match="already registered: b"):
        registry.register("b", 2, lambda t: True)
    assert registry.get("b") == 1 and registry.names() == ("a",) and registry.detect(ModelTraits()) is None


def test_every_tool_parser_declares_its_markers() -> None:
    for name in TOOL_PARSERS.names():
        factory = select_tool_parser(ModelTraits(), name)
        assert factory is not None and factory.name == name and factory.markers
