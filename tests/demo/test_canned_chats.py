"""Canned chats: the parsed answer written back as the raw Qwen3-format output the model is trained on."""

from __future__ import annotations

import json

from app.demo.canned_chats import CANNED_CHATS, canned_chat, render_completion, user


def test_content_only_and_with_reasoning() -> None:
    assert render_completion("Paris.") == "Paris."
    assert render_completion("Paris.", "The capital.") == "<think>\nThe capital.\n</think>\n\nParis."
    assert render_completion("Paris.", "") == "<think>\n\n</think>\n\nParis."


def test_tool_calls_follow_the_content_one_block_each() -> None:
    calls = [{"name": "f", "arguments": {"city": "Zürich"}}, {"name": "g", "arguments": {}}]
    text = render_completion("", None, calls)
    assert text == '<tool_call>\n{"name": "f", "arguments": {"city": "Zürich"}}\n</tool_call>\n' + (
        '<tool_call>\n{"name": "g", "arguments": {}}\n</tool_call>'
    )
    assert render_completion("Let me check.", None, calls[:1]).startswith("Let me check.\n<tool_call>\n")


def test_a_canned_chat_carries_its_answer_parsed_and_raw() -> None:
    chat = canned_chat("demo", [user("Hi")], "Hello.", reasoning="Greet.", enable_thinking=True)
    assert chat["chat_template_kwargs"] == {"enable_thinking": True} and chat["tool_calls"] == []
    assert chat["completion"] == render_completion("Hello.", "Greet.") and chat["stop"] is None
    custom = canned_chat("x", [user("Hi")], "Yo", render=lambda content, reasoning, calls: f"[{content}]")
    assert custom["completion"] == "[Yo]"


def test_the_training_set_has_unique_names_and_consistent_answers() -> None:
    names = [chat["name"] for chat in CANNED_CHATS]
    assert len(names) == len(set(names))
    for chat in CANNED_CHATS:
        assert chat["messages"][-1]["role"] in ("user", "tool")
        for call in chat["tool_calls"]:
            assert json.dumps(call["arguments"], ensure_ascii=False) in chat["completion"]
