"""The Anthropic Messages API: the request described for the prepare path, then its run loop: events →
the choice parser's deltas → content blocks and stream events (``MessageBuilder``); and token counting,
which renders the prompt exactly as a request would."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from app.engine.types import FinishEvent
from app.protocol.anthropic import CountTokensRequest, MessagesRequest
from app.protocol.anthropic_objects import (
    CountTokensResult,
    Message,
    MessageStreamEvent,
    MessageUsage,
    StopReason,
)
from app.serving.anthropic_events import MessageBuilder
from app.serving.anthropic_prompt import to_chat_input
from app.serving.generation import PreparedGeneration
from app.serving.outcome import raise_for_finish
from app.serving.prepare import GenerationSpec, Preparer


def sampling(req: MessagesRequest) -> dict[str, Any]:
    """The sampling fields under the names ``params.to_sampling_params`` takes. ``max_tokens`` is capped to
    what the context has room for (Claude Code asks for more than most local models hold); a message cut
    short by the context ends with ``model_context_window_exceeded``, as Anthropic's does. With thinking enabled,
    ``budget_tokens`` caps the thinking block: its end is forced once that many tokens are spent in it."""
    return {
        "temperature": req.temperature,
        "top_p": req.top_p,
        "top_k": req.top_k,
        "stop": req.stop_sequences,
        "max_tokens": req.max_tokens,
        "fit_max_tokens": True,
        "logprobs": None,
        "reasoning_budget": req.thinking.budget_tokens if req.thinking and req.thinking.type == "enabled" else None,
    }


def stop_reason(finish: FinishEvent, called: bool, max_tokens: int) -> tuple[StopReason, str | None]:
    """``stop_reason`` and ``stop_sequence`` from how the engine ended the message."""
    if finish.reason == "length":
        return ("max_tokens" if finish.completion_tokens >= max_tokens else "model_context_window_exceeded"), None
    if called:
        return "tool_use", None
    stop = (finish.detail or {}).get("stop_sequence")
    return ("stop_sequence", stop) if stop else ("end_turn", None)


@dataclass(slots=True)
class PreparedMessage:
    """A message admitted to the engine; its events are read by ``complete`` or ``stream``."""

    generation: PreparedGeneration  # one choice
    message: Message  # in progress; the builder fills in its content, stop reason and usage
    max_tokens: int


class AnthropicMessagesService:
    def __init__(self, preparer: Preparer) -> None:
        self._preparer = preparer

    async def prepare(self, req: MessagesRequest) -> PreparedMessage:
        """Validate, template, tokenize and admit to the engine; raises before any response is sent."""
        spec = GenerationSpec(f"msg_{uuid.uuid4().hex}", req.model, to_chat_input(req), sampling(req))
        g = await self._preparer.prepare(spec)
        message = Message(id=g.id, model=g.model, usage=MessageUsage(input_tokens=g.prompt_tokens, output_tokens=0))
        return PreparedMessage(g, message, req.max_tokens)

    async def count_tokens(self, req: CountTokensRequest) -> CountTokensResult:
        return CountTokensResult(input_tokens=await self._preparer.count_prompt_tokens(req.model, to_chat_input(req)))

    async def complete(self, p: PreparedMessage) -> Message:
        async for _ in self._run(p):
            pass
        return p.message

    def stream(self, p: PreparedMessage) -> AsyncIterator[MessageStreamEvent]:
        return self._run(p)

    async def _run(self, p: PreparedMessage) -> AsyncIterator[MessageStreamEvent]:
        g = p.generation
        builder = MessageBuilder(p.message)
        try:
            for event in builder.start():
                yield event
            async for choice, engine_event in g.events():
                if isinstance(engine_event, FinishEvent):
                    raise_for_finish(engine_event)
                for event in builder.add(choice.read(engine_event)):
                    yield event
            finish = g.choices[0].finish
            assert finish is not None, "the engine stream ended without a finish event"
            reason, sequence = stop_reason(finish, builder.called, p.max_tokens)
            usage = MessageUsage(input_tokens=finish.prompt_tokens, output_tokens=finish.completion_tokens)
            for event in builder.finish(reason, sequence, usage):
                yield event
        finally:
            g.close()
