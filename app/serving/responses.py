"""Responses API: items → chat template → engine (the chat path) → output items and stream events."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass, field

from app.engine.types import EventStream, FinishEvent, GenerationRequest, TokenEvent
from app.errors import HfServeError, InvalidRequest, NotFound, UnsupportedParameter
from app.models.registry import ModelRegistry
from app.parsers.base import OutputParser
from app.protocol.response_objects import (
    OutputTokensDetails,
    ResponseDeleted,
    ResponseError,
    ResponseEvent,
    ResponseObject,
    ResponseUsage,
)
from app.protocol.responses import InputItem, ResponseRequest
from app.serving.generation import SAMPLING_FIELDS, chat_logprobs, log_outcome, raise_for_finish
from app.serving.media import MediaConfig
from app.serving.prompting import ChatDefaults, check_tool_choice, render_chat
from app.serving.response_events import ResponseBuilder
from app.serving.response_items import as_input_item, chat_tools, input_items, to_chat_messages
from app.serving.response_store import ResponseStore
from app.serving.structured import text_format_grammar

LOGPROBS_INCLUDE = "message.output_text.logprobs"
# ``include`` values that are honoured: logprobs, and encrypted reasoning (there is none: reasoning is
# returned in the clear, which is what clients asking for it want to send back).
_INCLUDES = {LOGPROBS_INCLUDE, "reasoning.encrypted_content"}


def reject_unsupported(req: ResponseRequest) -> None:
    """Known fields this server cannot honour are refused, never silently ignored."""
    checks: list[tuple[bool, str, str]] = [
        ((req.n or 1) != 1, "n", "The Responses API returns one output; n must be 1."),
        (bool(req.background), "background", "background responses are not supported."),
        (req.truncation == "auto", "truncation", "truncation `auto` is not supported; shorten the input."),
    ]
    for failed, param, message in checks:
        if failed:
            raise UnsupportedParameter(message, param=param)
    for value in req.include or []:
        if value not in _INCLUDES:
            raise UnsupportedParameter(f"include `{value}` is not supported.", param="include")
    check_tool_choice(req.tool_choice, req.tools)


@dataclass(slots=True)
class _Prepared:
    response: ResponseObject  # in progress; the builder fills in output, status and usage
    conversation: list[InputItem]  # what is stored for a follow-up's previous_response_id
    events: EventStream
    parser: OutputParser
    logprobs: bool
    started: float
    failure: HfServeError | None = None
    finish: FinishEvent | None = None
    reasoning_tokens: int = field(default=0)


class ResponsesService:
    def __init__(
        self, registry: ModelRegistry, defaults: ChatDefaults, store: ResponseStore, media: MediaConfig | None = None
    ) -> None:
        self._registry = registry
        self._defaults = defaults
        self._store = store
        self._media = media or MediaConfig()

    # Stored responses

    def get(self, response_id: str) -> ResponseObject:
        stored = self._store.get(response_id)
        if stored is None:
            raise NotFound(f"No response with id `{response_id}` (responses are kept in memory for a while).")
        return stored.response

    def delete(self, response_id: str) -> ResponseDeleted:
        if not self._store.delete(response_id):
            raise NotFound(f"No response with id `{response_id}`.")
        return ResponseDeleted(id=response_id)

    def _history(self, req: ResponseRequest) -> list[InputItem]:
        if req.previous_response_id is None:
            return []
        previous = self._store.get(req.previous_response_id)
        if previous is None:
            raise NotFound(
                f"Previous response with id `{req.previous_response_id}` not found.", param="previous_response_id"
            )
        return [*previous.conversation, *(as_input_item(item) for item in previous.response.output)]

    # Generation

    async def prepare(self, req: ResponseRequest) -> _Prepared:
        """Validate, template, tokenize and admit to the engine; raises before any response is sent."""
        reject_unsupported(req)
        conversation = [*self._history(req), *input_items(req.input)]
        messages = to_chat_messages(req.instructions, conversation)
        if not any(m["role"] != "system" for m in messages):
            raise InvalidRequest("input has no message for the model to answer.", param="input")
        format_grammar = text_format_grammar(req.text.format.model_dump()) if req.text else None
        logprobs = LOGPROBS_INCLUDE in (req.include or []) or req.top_logprobs is not None
        ref = self._registry.resolve(req.model)
        async with self._registry.lease(ref) as model:
            rendered = await render_chat(
                model,
                messages,
                tools=chat_tools(req.tools),
                tool_choice=req.tool_choice,
                parallel_tool_calls=req.parallel_tool_calls is not False,
                chat_template_kwargs=req.chat_template_kwargs,
                defaults=self._defaults,
                format_grammar=format_grammar,
                media=self._media,
            )
            fields = req.model_dump(include=set(SAMPLING_FIELDS), exclude_none=True)
            fields["max_tokens"] = req.max_output_tokens
            fields["logprobs"] = (req.top_logprobs or 0) if logprobs else None
            params = rendered.sampling(fields, model.info, self._defaults.default_seed)
            response = ResponseObject(
                id=f"resp_{uuid.uuid4().hex}",
                created_at=int(time.time()),
                status="in_progress",
                model=model.info.name,
                instructions=req.instructions,
                max_output_tokens=req.max_output_tokens,
                previous_response_id=req.previous_response_id,
                parallel_tool_calls=req.parallel_tool_calls is not False,
                tool_choice=req.tool_choice or "auto",
                tools=req.tools or [],
                temperature=params.temperature,
                top_p=params.top_p,
                top_logprobs=req.top_logprobs,
                reasoning=req.reasoning.model_dump(exclude_none=True) if req.reasoning else None,
                text=req.text.model_dump(exclude_none=True) if req.text else {"format": {"type": "text"}},
                truncation=req.truncation or "disabled",
                store=req.store,
                metadata=req.metadata or {},
                user=req.user,
            )
            request = GenerationRequest(response.id, rendered.prompt, params, inputs=rendered.inputs)
            events = model.engine.generate(request)  # admission: may 429
        return _Prepared(response, conversation, events, rendered.plan.parser(), logprobs, time.monotonic())

    async def complete(self, p: _Prepared) -> ResponseObject:
        async for _ in self._run(p):
            pass
        if p.failure is not None:
            raise p.failure
        return p.response

    def stream(self, p: _Prepared) -> AsyncIterator[ResponseEvent]:
        return self._run(p)

    async def _run(self, p: _Prepared) -> AsyncIterator[ResponseEvent]:
        builder = ResponseBuilder(p.response, logprobs=p.logprobs)
        try:
            for event in builder.start():
                yield event
            async for engine_event in p.events:
                deltas = p.parser.feed(engine_event.text)
                if isinstance(engine_event, FinishEvent):
                    p.finish = engine_event
                    deltas += p.parser.finish()
                    logprobs = None
                elif isinstance(engine_event, TokenEvent):
                    logprobs = chat_logprobs(engine_event) if p.logprobs else None
                    if any(delta.reasoning for delta in deltas):
                        p.reasoning_tokens += len(engine_event.token_ids)
                for event in builder.add(deltas, logprobs):
                    yield event
            for event in self._finish(p, builder):
                yield event
        finally:
            p.events.close()
            with suppress(HfServeError):  # an engine failure was already turned into response.failed
                finishes = {0: p.finish} if p.finish else {}
                log_outcome(p.response.id, p.response.model, 1, finishes, p.started)

    def _finish(self, p: _Prepared, builder: ResponseBuilder) -> list[ResponseEvent]:
        finish = p.finish
        assert finish is not None, "the engine stream ended without a finish event"
        usage = ResponseUsage(
            input_tokens=finish.prompt_tokens,
            output_tokens=finish.completion_tokens,
            output_tokens_details=OutputTokensDetails(reasoning_tokens=p.reasoning_tokens),
            total_tokens=finish.prompt_tokens + finish.completion_tokens,
        )
        try:
            raise_for_finish(finish)
        except HfServeError as exc:
            p.failure = exc
            error = ResponseError(code="server_error", message=exc.message)  # the codes OpenAI defines
            events = builder.finish("failed", usage, error=error)
        else:
            if finish.reason == "length":
                events = builder.finish("incomplete", usage, incomplete_reason="max_output_tokens")
            else:
                events = builder.finish("completed", usage)
        if p.response.store:
            self._store.put(p.response.model_copy(deep=True), p.conversation)
        return events
