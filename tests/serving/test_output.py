"""plan_output: which parsers a request gets, and whether decoding keeps special tokens for them."""

from __future__ import annotations

import pytest

from app.engine.types import ModelInfo
from app.serving.output import plan_output

TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]

# (model_type, added tokens, the special ones among them)
QWEN3 = ("qwen3", ("<|im_end|>", "<tool_call>", "</tool_call>", "<think>", "</think>"), {"<|im_end|>"})
MISTRAL = ("mistral", ("</s>", "[INST]", "[/INST]", "[TOOL_CALLS]"), {"</s>", "[INST]", "[/INST]", "[TOOL_CALLS]"})
GEMMA4 = (
    "gemma4_text",
    ("<turn|>", "<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", '<|"|>'),
    {"<turn|>", "<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", '<|"|>'},
)


def _info(model_type: str, added: tuple[str, ...], special: set[str]) -> ModelInfo:
    return ModelInfo(
        name="org/model@main",
        max_context=100,
        eos_token_ids=(0,),
        generation_defaults={},
        model_type=model_type,
        added_tokens={token: i for i, token in enumerate(added)},
        special_tokens=frozenset(special),
    )


@pytest.mark.parametrize(
    ("family", "tools", "keep"),
    [
        (QWEN3, None, False),  # <think> is not special: decoded either way
        (QWEN3, TOOLS, False),  # nor is <tool_call>
        (MISTRAL, None, False),
        (MISTRAL, TOOLS, True),  # [TOOL_CALLS] is special
        (GEMMA4, TOOLS, True),
        (GEMMA4, None, True),  # the thought channel's delimiters are special, tools or not
    ],
)
def test_special_tokens_are_kept_when_a_delimiter_is_one(
    family: tuple[str, tuple[str, ...], set[str]], tools: list | None, keep: bool
) -> None:
    plan = plan_output(_info(*family), tools=tools, tool_parser=None, parallel_tool_calls=True, prompt_tail="")
    assert plan.keep_special_tokens is keep
    assert (plan.tool_factory is not None) == bool(tools)
