"""Chat completions: protocol request → GenerationRequest → engine → completion or chunks."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import structlog

from app.engine.types import FinishEvent, GenerationRequest, ServingModel
from app.errors import EngineFailure, InvalidRequest, UnsupportedParameter
from app.models.ids import ModelRef
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
)
from app.protocol.common import Usage
from app.serving.params import to_sampling_params

log = structlog.get_logger(__name__)
_SAMPLING_FIELDS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "logit_bias",
    "stop",
    "seed",
    "generation_config",
)


@dataclass(frozen=True, slots=True)
class ChatDefaults:
    """Server-wide defaults from the command line."""

    chat_template_kwargs: dict[str, Any]
    reasoning: str = "auto"  # auto | on | off
    default_seed: int | None = None


def reject_unsupported(req: ChatCompletionRequest) -> None:
    """Known fields this server cannot honour yet are refused, never silently ignored."""
    if req.n is not None and req.n > 1:
        raise UnsupportedParameter("n > 1 is not supported yet.", param="n")
    if req.logprobs or req.top_logprobs:
        raise UnsupportedParameter("logprobs are not supported yet.", param="logprobs")
    if req.response_format and req.response_format.get("type", "text") != "text":
        raise UnsupportedParameter("Only response_format type `text` is supported yet.", param="response_format")
    if req.tool_choice not in (None, "auto", "none"):
        raise UnsupportedParameter(
            "tool_choice `required` or a named function is not supported yet.", param="tool_choice"
        )


def _text_content(message: ChatMessage, index: int) -> str | None:
    if message.content is None or isinstance(message.content, str):
        return message.content
    texts = []
    for part in message.content:
        if part.type != "text" or part.text is None:
            raise InvalidRequest(
                f"This model takes text only; content of type `{part.type}` is not supported.",
                param=f"messages[{index}].content",
            )
        texts.append(part.text)
    return "\n".join(texts)


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
        item["content"] = _text_content(message, index) or ""
        if message.tool_calls:
            item["tool_calls"] = _tool_calls_for_template(message.tool_calls)
        rendered.append(item)
    return rendered


@dataclass(slots=True)
class _Prepared:
    """A validated, tokenized request. Holds no lease: generation takes its own (a stream that is never
    iterated must not pin the model)."""

    id: str
    created: int
    ref: ModelRef
    model: str  # canonical name echoed in responses
    request: GenerationRequest
    include_usage: bool
    started: float


class ChatService:
    def __init__(self, registry: ModelRegistry, defaults: ChatDefaults) -> None:
        self._registry = registry
        self._defaults = defaults

    def _template_kwargs(self, req: ChatCompletionRequest) -> dict[str, Any]:
        kwargs = dict(self._defaults.chat_template_kwargs)
        if self._defaults.reasoning != "auto":
            kwargs["enable_thinking"] = self._defaults.reasoning == "on"
        kwargs.update(req.chat_template_kwargs or {})
        return kwargs

    async def prepare(self, req: ChatCompletionRequest) -> _Prepared:
        """Validate, template and tokenize; raises before any response is sent."""
        reject_unsupported(req)
        ref = self._registry.resolve(req.model)
        async with self._registry.lease(ref) as model:
            messages = to_template_messages(req.messages)
            tools = req.tools if req.tool_choice != "none" else None
            prompt = await asyncio.to_thread(
                model.renderer.encode_chat, messages, tools=tools, template_kwargs=self._template_kwargs(req)
            )
            fields = req.model_dump(include=set(_SAMPLING_FIELDS), exclude_none=True)
            fields["max_tokens"] = req.max_completion_tokens or req.max_tokens
            params = to_sampling_params(
                fields, info=model.info, prompt_tokens=len(prompt), default_seed=self._defaults.default_seed
            )
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return _Prepared(
            request_id,
            int(time.time()),
            ref,
            model.info.name,
            GenerationRequest(request_id, prompt, params),
            include_usage,
            time.monotonic(),
        )

    async def complete(self, p: _Prepared) -> ChatCompletion:
        text: list[str] = []
        finish: FinishEvent | None = None
        async with self._registry.lease(p.ref) as model:
            try:
                async for event in model.engine.generate(p.request):
                    text.append(event.text)
                    if isinstance(event, FinishEvent):
                        finish = event
                        self._finished(p, event)
            finally:
                self._release(p, model, finish, len(text))
        assert finish is not None
        message = ChatCompletionMessage(content="".join(text))
        choice = ChatChoice(index=0, message=message, finish_reason=finish.reason)
        return ChatCompletion(id=p.id, created=p.created, model=p.model, choices=[choice], usage=_usage(finish))

    async def stream(self, p: _Prepared) -> AsyncIterator[ChatCompletionChunk]:
        def chunk(delta: ChatDelta, finish_reason: str | None = None) -> ChatCompletionChunk:
            choice = ChatChunkChoice(index=0, delta=delta, finish_reason=finish_reason)
            return ChatCompletionChunk(id=p.id, created=p.created, model=p.model, choices=[choice])

        finish: FinishEvent | None = None
        tokens = 0
        async with self._registry.lease(p.ref) as model:
            try:
                yield chunk(ChatDelta(role="assistant", content=""))
                async for event in model.engine.generate(p.request):
                    tokens += 1
                    if event.text:
                        yield chunk(ChatDelta(content=event.text))
                    if isinstance(event, FinishEvent):
                        finish = event
                        self._finished(p, event)
                        yield chunk(ChatDelta(), finish_reason=event.reason)
                        if p.include_usage:
                            yield ChatCompletionChunk(
                                id=p.id, created=p.created, model=p.model, choices=[], usage=_usage(event)
                            )
            finally:
                self._release(p, model, finish, tokens)

    def _release(self, p: _Prepared, model: ServingModel, finish: FinishEvent | None, events: int) -> None:
        """Always runs: a request that did not finish (client gone, cancelled) is aborted in the engine."""
        model.engine.abort(p.request.request_id)
        if finish is None:
            log.info(
                "request_aborted",
                request_id=p.id,
                model=p.model,
                tokens_sent=events,
                duration_ms=round((time.monotonic() - p.started) * 1000, 1),
            )

    def _finished(self, p: _Prepared, finish: FinishEvent) -> None:
        log.info(
            "request_finished",
            request_id=p.id,
            model=p.model,
            finish_reason=finish.reason,
            prompt_tokens=finish.prompt_tokens,
            completion_tokens=finish.completion_tokens,
            duration_ms=round((time.monotonic() - p.started) * 1000, 1),
        )
        if finish.reason == "error":
            raise EngineFailure(f"Generation failed: {finish.error}")


def _usage(finish: FinishEvent) -> Usage:
    return Usage(
        prompt_tokens=finish.prompt_tokens,
        completion_tokens=finish.completion_tokens,
        total_tokens=finish.prompt_tokens + finish.completion_tokens,
    )
