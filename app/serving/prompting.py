"""Chat-style prompting shared by chat completions and responses: tool choice, templating off the event
loop, the output plan (parsers) and the grammar a request's output must follow."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.engine.types import ServingModel
from app.errors import InvalidRequest
from app.serving.output import OutputPlan, plan_output
from app.serving.structured import chosen_tools, tool_call_grammar

_TAIL_TOKENS = 16  # enough to see whether the template opened (or closed) a reasoning block


@dataclass(frozen=True, slots=True)
class Rendered:
    prompt: list[int]
    plan: OutputPlan
    grammar: str | None


def check_tool_choice(tool_choice: Any, tools: list[dict[str, Any]] | None, param: str = "tool_choice") -> None:
    if tool_choice is None or tool_choice in ("auto", "none"):
        return
    if tool_choice != "required" and not isinstance(tool_choice, dict):
        raise InvalidRequest("tool_choice must be auto, none, required or a function.", param=param)
    if not tools:
        raise InvalidRequest("tool_choice requires tools.", param=param)


async def render_chat(
    model: ServingModel,
    messages: list[dict[str, Any]],
    *,
    tools: list[dict[str, Any]] | None,
    tool_choice: Any,
    parallel_tool_calls: bool,
    template_kwargs: Mapping[str, Any],
    tool_parser: str | None,
    format_grammar: str | None,
) -> Rendered:
    """``tools`` in chat form; ``format_grammar``: the response format's constraint, if any."""
    offered = tools if tool_choice != "none" else None

    def encode() -> tuple[list[int], str]:
        prompt = model.renderer.encode_chat(messages, tools=offered, template_kwargs=template_kwargs)
        return prompt, model.renderer.decode(prompt[-_TAIL_TOKENS:])

    prompt, tail = await asyncio.to_thread(encode)
    plan = plan_output(
        model.info, tools=offered, tool_parser=tool_parser, parallel_tool_calls=parallel_tool_calls, prompt_tail=tail
    )
    grammar = format_grammar
    if offered and tool_choice not in (None, "auto"):
        if format_grammar is not None:
            raise InvalidRequest("A forced tool call and a response format cannot be combined.", param="tool_choice")
        grammar = tool_call_grammar(
            plan.tool_parser_name,
            chosen_tools(offered, tool_choice),
            parallel=parallel_tool_calls,
            tokens=model.info.added_tokens,
        )
    return Rendered(prompt, plan, grammar)
