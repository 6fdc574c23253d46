"""Chat completions: protocol request → GenerationRequest → engine → completion or chunks."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import structlog

from app.engine.types import EventStream, FinishEvent, GenerationRequest, TokenEvent
from app.errors import InvalidRequest
from app.models.registry import ModelRegistry
from app.parsers.base import OutputParser, ParsedDelta
from app.protocol.chat import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionRequest,
    ChatDelta,
    ChatMessage,
    ChoiceLogprobs,
    TokenLogprob,
)
from app.serving.generation import SAMPLING_FIELDS, chat_logprobs, log_outcome, raise_for_finish, usage_of
from app.serving.media import MediaConfig, media_part
from app.serving.output import ChoiceOutput, chunk_tool_calls, finish_reason, merge
from app.serving.prompting import ChatDefaults, check_tool_choice, render_chat
from app.serving.structured import response_format_grammar

log = structlog.get_logger(__name__)


def reject_unsupported(req: ChatCompletionRequest) -> None:
    """Known fields this server cannot honour are refused, never silently ignored."""
    if req.top_logprobs and not req.logprobs:
        raise InvalidRequest("top_logprobs requires logprobs: true.", param="top_logprobs")
    check_tool_choice(req.tool_choice, req.tools)


def _content(message: ChatMessage, index: int) -> str | list[dict[str, Any]] | None:
    """Text parts joined into one string; with media parts, the parts in the form chat templates take
    (``{"type": "text", "text"}``, ``{"type": "image" | "audio" | "video", "media": MediaRef}``)."""
    if message.content is None or isinstance(message.content, str):
        return message.content
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(message.content):
        if part.type == "text" and part.text is not None:
            parts.append({"type": "text", "text": part.text})
            continue
        param = f"messages[{index}].content[{j}]"
        ref = media_part(part, param)
        if ref is None:
            raise InvalidRequest(f"Content of type `{part.type}` is not supported.", param=param)
        parts.append({"type": ref.kind, "media": ref})
    if all(part["type"] == "text" for part in parts):
        return "\n".join(part["text"] for part in parts)
    return parts


def _tool_calls_for_template(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI sends arguments as a JSON string; chat templates expect an object."""
    converted = []
    for call in calls:
        function = dict(call.get("function") or {})
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            with suppress(ValueError):  # not JSON: hand the template the string as sent
                function["arguments"] = json.loads(arguments)
        converted.append({**call, "function": function})
    return converted


def to_template_messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    rendered = []
    for index, message in enumerate(messages):
        item = message.model_dump(exclude_none=True)
        item["role"] = "system" if message.role == "developer" else message.role
        item["content"] = _content(message, index) or ""
        if message.tool_calls:
            item["tool_calls"] = _tool_calls_for_template(message.tool_calls)
        rendered.append(item)
    return rendered


@dataclass(slots=True)
class _Prepared:
    """A request admitted to the engine; its events are read by ``complete`` or ``stream``."""

    id: str
    created: int
    model: str  # canonical name echoed in responses
    events: EventStream
    parsers: list[OutputParser]  # one per choice
    logprobs: bool
    include_usage: bool
    started: float

    @property
    def n(self) -> int:
        return len(self.parsers)


class ChatService:
    def __init__(self, registry: ModelRegistry, defaults: ChatDefaults, media: MediaConfig | None = None) -> None:
        self._registry = registry
        self._defaults = defaults
        self._media = media or MediaConfig()

    async def prepare(self, req: ChatCompletionRequest) -> _Prepared:
        """Validate, template, tokenize and admit to the engine; raises before any response is sent."""
        reject_unsupported(req)
        format_grammar = response_format_grammar(req.response_format)
        ref = self._registry.resolve(req.model)
        async with self._registry.lease(ref) as model:
            rendered = await render_chat(
                model,
                to_template_messages(req.messages),
                tools=req.tools,
                tool_choice=req.tool_choice,
                parallel_tool_calls=req.parallel_tool_calls is not False,
                chat_template_kwargs=req.chat_template_kwargs,
                defaults=self._defaults,
                format_grammar=format_grammar,
                media=self._media,
            )
            fields = req.model_dump(include=set(SAMPLING_FIELDS), exclude_none=True)
            fields["max_tokens"] = req.max_completion_tokens or req.max_tokens
            fields["logprobs"] = (req.top_logprobs or 0) if req.logprobs else None
            params = rendered.sampling(fields, model.info, self._defaults.default_seed)
            request_id = f"chatcmpl-{uuid.uuid4().hex}"
            request = GenerationRequest(request_id, rendered.prompt, params, inputs=rendered.inputs)
            events = model.engine.generate(request)  # admission: may 429
        return _Prepared(
            request_id,
            int(time.time()),
            model.info.name,
            events,
            [rendered.plan.parser() for _ in range(params.n)],
            params.logprobs is not None,
            bool(req.stream_options and req.stream_options.include_usage),
            time.monotonic(),
        )

    async def complete(self, p: _Prepared) -> ChatCompletion:
        outputs = [ChoiceOutput() for _ in range(p.n)]
        logprobs: list[list[TokenLogprob]] = [[] for _ in range(p.n)]
        finishes: dict[int, FinishEvent] = {}
        try:
            async for event in p.events:
                parser = p.parsers[event.index]
                outputs[event.index].add(parser.feed(event.text))
                if isinstance(event, FinishEvent):
                    finishes[event.index] = event
                    outputs[event.index].add(parser.finish())
                else:
                    logprobs[event.index].extend(chat_logprobs(event))
        finally:
            self._close(p, finishes)
        choices = [
            ChatChoice(
                index=i,
                message=ChatCompletionMessage(
                    content=out.text(), reasoning_content=out.reasoning_text(), tool_calls=out.tool_calls()
                ),
                finish_reason=finish_reason(finishes[i].reason, bool(out.calls)),
                logprobs=ChoiceLogprobs(content=logprobs[i]) if p.logprobs else None,
            )
            for i, out in enumerate(outputs)
        ]
        return ChatCompletion(id=p.id, created=p.created, model=p.model, choices=choices, usage=usage_of(finishes))

    async def stream(self, p: _Prepared) -> AsyncIterator[ChatCompletionChunk]:
        def chunk(index: int, delta: ChatDelta, finish: str | None = None, lp: list[TokenLogprob] | None = None):
            logprobs = ChoiceLogprobs(content=lp) if lp is not None else None
            choice = ChatChunkChoice(index=index, delta=delta, finish_reason=finish, logprobs=logprobs)
            return ChatCompletionChunk(id=p.id, created=p.created, model=p.model, choices=[choice])

        def as_delta(deltas: list[ParsedDelta]) -> ChatDelta | None:
            merged = merge(deltas)
            if not merged:
                return None
            return ChatDelta(
                content=merged.content or None,
                reasoning_content=merged.reasoning or None,
                tool_calls=chunk_tool_calls(merged.tool_calls),
            )

        finishes: dict[int, FinishEvent] = {}
        called: set[int] = set()
        try:
            for index in range(p.n):
                yield chunk(index, ChatDelta(role="assistant", content=""))
            async for event in p.events:
                parser = p.parsers[event.index]
                deltas = parser.feed(event.text)
                if isinstance(event, FinishEvent):
                    finishes[event.index] = event
                    raise_for_finish(event)
                    deltas += parser.finish()
                lp = chat_logprobs(event) if p.logprobs and isinstance(event, TokenEvent) else None
                if any(delta.tool_calls for delta in deltas):
                    called.add(event.index)
                delta = as_delta(deltas)
                if delta is not None or lp:
                    yield chunk(event.index, delta or ChatDelta(content=""), lp=lp)
                if isinstance(event, FinishEvent):
                    yield chunk(event.index, ChatDelta(), finish=finish_reason(event.reason, event.index in called))
            if p.include_usage:
                yield ChatCompletionChunk(
                    id=p.id, created=p.created, model=p.model, choices=[], usage=usage_of(finishes)
                )
        finally:
            self._close(p, finishes)

    def _close(self, p: _Prepared, finishes: dict[int, FinishEvent]) -> None:
        """Always runs: aborts what did not finish (client gone) and logs the outcome once."""
        p.events.close()
        log_outcome(p.id, p.model, p.n, finishes, p.started)
