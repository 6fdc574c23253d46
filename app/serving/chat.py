"""Chat completions: the request described for the prepare path, then its run loop: events → one
completion, or chunks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from app.engine.types import FinishEvent
from app.errors import InvalidRequest
from app.parsers.base import ParsedDelta
from app.protocol.chat import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionRequest,
    ChatDelta,
    ChoiceLogprobs,
    TokenLogprob,
)
from app.protocol.common import PromptLogprobs
from app.serving.chat_messages import to_template_messages, to_template_tools
from app.serving.generation import Choice, PreparedGeneration
from app.serving.logprobs import token_logprobs, vllm_prompt_logprobs
from app.serving.outcome import raise_for_finish
from app.serving.output import chunk_tool_calls, finish_reason, merge
from app.serving.params import sampling_fields
from app.serving.prepare import (
    ChatInput,
    GenerationSpec,
    Preparer,
    check_tool_choice,
    wire_tool_choice,
)
from app.serving.structured import GUIDED_FIELDS, output_constraint


def reject_unsupported(req: ChatCompletionRequest) -> None:
    """Known fields this server cannot honour are refused, never silently ignored."""
    if req.top_logprobs and not req.logprobs:
        raise InvalidRequest("top_logprobs requires logprobs: true.", param="top_logprobs")
    if req.prompt_logprobs is not None and req.stream:
        raise InvalidRequest("prompt_logprobs is not available with stream: true.", param="prompt_logprobs")
    check_tool_choice(req.tool_choice, req.tools)


def to_generation_spec(req: ChatCompletionRequest) -> GenerationSpec:
    reject_unsupported(req)
    chat = ChatInput(
        to_template_messages(req.messages),
        tools=to_template_tools([tool.model_dump(exclude_none=True) for tool in req.tools]) if req.tools else None,
        tool_choice=wire_tool_choice(req.tool_choice),
        parallel_tool_calls=req.parallel_tool_calls is not False,
        template_kwargs=req.chat_template_kwargs,
    )
    fields = sampling_fields(
        req,
        max_tokens=req.max_completion_tokens or req.max_tokens,
        logprobs=(req.top_logprobs or 0) if req.logprobs else None,
        prompt_logprobs=req.prompt_logprobs,
    )
    if req.thinking_token_budget is not None:
        fields["reasoning_budget"] = req.thinking_token_budget
    guided = req.model_dump(include=set(GUIDED_FIELDS))
    grammar = output_constraint(req.response_format, req.structured_outputs, **guided)
    return GenerationSpec(f"chatcmpl-{uuid.uuid4().hex}", req.model, chat, fields, grammar)


def _as_delta(deltas: list[ParsedDelta]) -> ChatDelta | None:
    merged = merge(deltas)
    if not merged:
        return None
    return ChatDelta(
        content=merged.content or None,
        reasoning_content=merged.reasoning or None,
        tool_calls=chunk_tool_calls(merged.tool_calls),
    )


def _chat_choice(choice: Choice, logprobs: bool) -> ChatChoice:
    assert choice.finish is not None, "the engine stream ended without a finish event"
    output = choice.output
    return ChatChoice(
        index=choice.index,
        message=ChatCompletionMessage(
            content=output.text(), reasoning_content=output.reasoning_text(), tool_calls=output.tool_calls()
        ),
        finish_reason=finish_reason(choice.finish.reason, bool(output.calls)),
        logprobs=ChoiceLogprobs(content=choice.logprobs) if logprobs else None,
    )


@dataclass(slots=True)
class PreparedChat:
    """A chat admitted to the engine; its events are read by ``complete`` or ``stream``."""

    generation: PreparedGeneration
    include_usage: bool
    prompt_logprobs: int | None = None  # vLLM's field: the prompt's logprobs, on the response

    def scored_prompt(self) -> PromptLogprobs | None:
        scored = self.generation.choices[0].prompt_logprobs
        if self.prompt_logprobs is None or scored is None:
            return None
        return vllm_prompt_logprobs(scored, self.prompt_logprobs)


class ChatService:
    def __init__(self, preparer: Preparer) -> None:
        self._preparer = preparer

    async def prepare(self, req: ChatCompletionRequest) -> PreparedChat:
        """Validate, template, tokenize and admit to the engine; raises before any response is sent."""
        generation = await self._preparer.prepare(to_generation_spec(req))
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return PreparedChat(generation, include_usage, req.prompt_logprobs)

    async def complete(self, p: PreparedChat) -> ChatCompletion:
        g = p.generation
        try:
            async for choice, event in g.events():
                choice.output.add(choice.read(event))
                if not isinstance(event, FinishEvent) and g.logprobs:
                    choice.logprobs.extend(token_logprobs(event))
        finally:
            g.close()
        choices = [_chat_choice(choice, g.logprobs) for choice in g.choices]
        usage = g.usage(details=True)
        return ChatCompletion(
            id=g.id, created=g.created, model=g.model, choices=choices, usage=usage, prompt_logprobs=p.scored_prompt()
        )

    async def stream(self, p: PreparedChat) -> AsyncIterator[ChatCompletionChunk]:
        g = p.generation

        def chunk(index: int, delta: ChatDelta, finish: str | None = None, lp: list[TokenLogprob] | None = None):
            logprobs = ChoiceLogprobs(content=lp) if lp is not None else None
            choice = ChatChunkChoice(index=index, delta=delta, finish_reason=finish, logprobs=logprobs)
            return ChatCompletionChunk(id=g.id, created=g.created, model=g.model, choices=[choice])

        try:
            for choice in g.choices:
                yield chunk(choice.index, ChatDelta(role="assistant", content=""))
            async for choice, event in g.events():
                if isinstance(event, FinishEvent):
                    raise_for_finish(event)
                deltas = choice.read(event)
                lp = token_logprobs(event) if g.logprobs and not isinstance(event, FinishEvent) else None
                choice.output.add(deltas)
                delta = _as_delta(deltas)
                if delta is not None or lp:
                    yield chunk(choice.index, delta or ChatDelta(content=""), lp=lp)
                if isinstance(event, FinishEvent):
                    finish = finish_reason(event.reason, bool(choice.output.calls))
                    yield chunk(choice.index, ChatDelta(), finish=finish)
            if p.include_usage:
                usage = g.usage(details=True)
                yield ChatCompletionChunk(id=g.id, created=g.created, model=g.model, choices=[], usage=usage)
        finally:
            g.close()
