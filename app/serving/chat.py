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
from app.errors import InvalidRequest, UnsupportedParameter
from app.models.registry import ModelRegistry
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
from app.serving.media import MediaConfig, encode_prompt, media_part
from app.serving.params import to_sampling_params

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ChatDefaults:
    """Server-wide defaults from the command line."""

    chat_template_kwargs: dict[str, Any]
    reasoning: str = "auto"  # auto | on | off
    default_seed: int | None = None


def template_kwargs(defaults: ChatDefaults, requested: dict[str, Any] | None) -> dict[str, Any]:
    """Server defaults, then ``--reasoning``, then what the request asks for."""
    kwargs = dict(defaults.chat_template_kwargs)
    if defaults.reasoning != "auto":
        kwargs["enable_thinking"] = defaults.reasoning == "on"
    kwargs.update(requested or {})
    return kwargs


def reject_unsupported(req: ChatCompletionRequest) -> None:
    """Known fields this server cannot honour yet are refused, never silently ignored."""
    if req.top_logprobs and not req.logprobs:
        raise InvalidRequest("top_logprobs requires logprobs: true.", param="top_logprobs")
    if req.response_format and req.response_format.get("type", "text") != "text":
        raise UnsupportedParameter("Only response_format type `text` is supported yet.", param="response_format")
    if req.parallel_tool_calls is False:
        raise UnsupportedParameter("parallel_tool_calls: false is not supported yet.", param="parallel_tool_calls")
    if req.tool_choice not in (None, "auto", "none"):
        raise UnsupportedParameter(
            "tool_choice `required` or a named function is not supported yet.", param="tool_choice"
        )


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
    n: int
    logprobs: bool
    include_usage: bool
    started: float


class ChatService:
    def __init__(self, registry: ModelRegistry, defaults: ChatDefaults, media: MediaConfig | None = None) -> None:
        self._registry = registry
        self._defaults = defaults
        self._media = media or MediaConfig()

    async def prepare(self, req: ChatCompletionRequest) -> _Prepared:
        """Validate, template, tokenize and admit to the engine; raises before any response is sent."""
        reject_unsupported(req)
        ref = self._registry.resolve(req.model)
        async with self._registry.lease(ref) as model:
            messages = to_template_messages(req.messages)
            tools = req.tools if req.tool_choice != "none" else None
            kwargs = template_kwargs(self._defaults, req.chat_template_kwargs)
            prompt, inputs = await encode_prompt(model, messages, self._media, tools=tools, template_kwargs=kwargs)
            fields = req.model_dump(include=set(SAMPLING_FIELDS), exclude_none=True)
            fields["max_tokens"] = req.max_completion_tokens or req.max_tokens
            fields["logprobs"] = (req.top_logprobs or 0) if req.logprobs else None
            params = to_sampling_params(
                fields, info=model.info, prompt_tokens=len(prompt), default_seed=self._defaults.default_seed
            )
            request_id = f"chatcmpl-{uuid.uuid4().hex}"
            request = GenerationRequest(request_id, prompt, params, inputs=inputs)
            events = model.engine.generate(request)  # admission: may 429
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return _Prepared(
            request_id,
            int(time.time()),
            model.info.name,
            events,
            params.n,
            params.logprobs is not None,
            include_usage,
            time.monotonic(),
        )

    async def complete(self, p: _Prepared) -> ChatCompletion:
        texts: list[list[str]] = [[] for _ in range(p.n)]
        logprobs: list[list[TokenLogprob]] = [[] for _ in range(p.n)]
        finishes: dict[int, FinishEvent] = {}
        try:
            async for event in p.events:
                texts[event.index].append(event.text)
                if isinstance(event, FinishEvent):
                    finishes[event.index] = event
                else:
                    logprobs[event.index].extend(chat_logprobs(event))
        finally:
            self._close(p, finishes)
        choices = [
            ChatChoice(
                index=i,
                message=ChatCompletionMessage(content="".join(texts[i])),
                finish_reason=finishes[i].reason,
                logprobs=ChoiceLogprobs(content=logprobs[i]) if p.logprobs else None,
            )
            for i in range(p.n)
        ]
        return ChatCompletion(id=p.id, created=p.created, model=p.model, choices=choices, usage=usage_of(finishes))

    async def stream(self, p: _Prepared) -> AsyncIterator[ChatCompletionChunk]:
        def chunk(index: int, delta: ChatDelta, finish: str | None = None, lp: list[TokenLogprob] | None = None):
            logprobs = ChoiceLogprobs(content=lp) if lp is not None else None
            choice = ChatChunkChoice(index=index, delta=delta, finish_reason=finish, logprobs=logprobs)
            return ChatCompletionChunk(id=p.id, created=p.created, model=p.model, choices=[choice])

        finishes: dict[int, FinishEvent] = {}
        try:
            for index in range(p.n):
                yield chunk(index, ChatDelta(role="assistant", content=""))
            async for event in p.events:
                if isinstance(event, TokenEvent):
                    if event.text or event.logprobs:
                        lp = chat_logprobs(event) if p.logprobs else None
                        yield chunk(event.index, ChatDelta(content=event.text), lp=lp)
                    continue
                finishes[event.index] = event
                raise_for_finish(event)
                if event.text:
                    yield chunk(event.index, ChatDelta(content=event.text))
                yield chunk(event.index, ChatDelta(), finish=event.reason)
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
