"""Reassembling a chat completion stream from the official ``openai`` client, the way clients do."""

from __future__ import annotations

from typing import Any

from openai import OpenAI


def stream_chat(client: OpenAI, **kwargs: Any) -> tuple[dict[str, Any], list[Any]]:
    """Streams one chat completion; returns the reassembled message and the raw chunks.

    Checks the OpenAI streaming shape of tool calls on the way: a call's id and name come once, in its
    first delta, and no argument fragment arrives before them."""
    chunks = list(client.chat.completions.create(stream=True, **kwargs))
    message: dict[str, Any] = {"content": "", "reasoning_content": "", "tool_calls": {}}
    finish = None
    for chunk in chunks:
        for choice in chunk.choices:
            delta = choice.delta
            message["content"] += delta.content or ""
            message["reasoning_content"] += getattr(delta, "reasoning_content", None) or ""
            for call in delta.tool_calls or []:
                entry = message["tool_calls"].setdefault(call.index, {"id": None, "name": None, "arguments": ""})
                if call.id:
                    assert entry["id"] is None, "id and name come once, first"
                    entry["id"], entry["name"] = call.id, call.function.name
                else:
                    assert entry["id"] is not None, "arguments before the call's id"
                entry["arguments"] += call.function.arguments or ""
            finish = choice.finish_reason or finish
    message["finish_reason"] = finish
    return message, chunks
