"""Responses API: items → chat-template messages, described for the prepare path; then its run loop:
events → output items and stream events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass

from app.engine.types import TokenEvent
from app.errors import HfServeError, InvalidRequest, NotFound, UnsupportedParameter
from app.protocol.response_objects import (
    InputItemList,
    InputTokensDetails,
    OutputTokensDetails,
    ResponseDeleted,
    ResponseError,
    ResponseEvent,
    ResponseObject,
    ResponseUsage,
)
from app.protocol.responses import InputItem, ResponseRequest
from app.serving.generation import PreparedGeneration
from app.serving.logprobs import token_logprobs
from app.serving.outcome import raise_for_finish
from app.serving.params import sampling_fields
from app.serving.prepare import (
    ChatInput,
    GenerationSpec,
    Preparer,
    check_tool_choice,
    wire_tool_choice,
)
from app.serving.response_events import ResponseBuilder
from app.serving.response_items import as_input_item, chat_tools, input_items, listed_item, to_chat_messages
from app.serving.response_store import ResponseStore
from app.serving.structured import text_format_grammar

LOGPROBS_INCLUDE = "message.output_text.logprobs"
# ``include`` values that are honoured: logprobs, and encrypted reasoning (there is none: reasoning is
# returned in the clear, which is what clients asking for it want to send back).
_INCLUDES = {LOGPROBS_INCLUDE, "reasoning.encrypted_content"}
# ``include`` values of an input-item listing: image URLs are always in the items, nothing else applies.
_LISTING_INCLUDES = {"message.input_image.image_url"}


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
class PreparedResponse:
    generation: PreparedGeneration  # one choice
    response: ResponseObject  # in progress; the builder fills in output, status and usage
    conversation: list[InputItem]  # what is stored for a follow-up's previous_response_id
    failure: HfServeError | None = None


def _response_object(req: ResponseRequest, generation: PreparedGeneration) -> ResponseObject:
    """The response as it starts: in progress, echoing what the request set."""
    return ResponseObject(
        id=generation.id,
        created_at=generation.created,
        status="in_progress",
        model=generation.model,
        instructions=req.instructions,
        max_output_tokens=req.max_output_tokens,
        previous_response_id=req.previous_response_id,
        parallel_tool_calls=req.parallel_tool_calls is not False,
        tool_choice=wire_tool_choice(req.tool_choice) or "auto",
        tools=[tool.model_dump(exclude_none=True) for tool in req.tools or ()],
        temperature=generation.params.temperature,
        top_p=generation.params.top_p,
        top_logprobs=req.top_logprobs,
        reasoning=req.reasoning.model_dump(exclude_none=True) if req.reasoning else None,
        text=req.text.model_dump(exclude_none=True) if req.text else {"format": {"type": "text"}},
        truncation=req.truncation or "disabled",
        store=req.store,
        metadata=req.metadata or {},
        user=req.user,
    )


class ResponsesService:
    def __init__(self, preparer: Preparer, store: ResponseStore) -> None:
        self._preparer = preparer
        self._store = store

    # Stored responses

    async def get(self, response_id: str) -> ResponseObject:
        stored = await self._store.get(response_id)
        if stored is None:
            raise NotFound(f"No response with id `{response_id}` (responses are kept for a while, then expire).")
        return stored.response

    async def list_input_items(
        self,
        response_id: str,
        *,
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
        include: list[str] | None = None,
    ) -> InputItemList:
        """One page of the input items that led to a stored response (earlier turns included), newest
        first unless ``order`` is ``asc``; ``after`` is the id of the last item of the previous page."""
        unknown = sorted(set(include or ()) - _LISTING_INCLUDES)
        if unknown:
            raise InvalidRequest(f"Unsupported include value `{unknown[0]}` for input items.", param="include")
        stored = await self._store.get(response_id)
        if stored is None:
            raise NotFound(f"No response with id `{response_id}`.")
        items = list(stored.conversation) if order == "asc" else list(reversed(stored.conversation))
        if after is not None:
            ids = [item.id for item in items]
            if after not in ids:
                raise InvalidRequest(f"No input item with id `{after}` in this response.", param="after")
            items = items[ids.index(after) + 1 :]
        page = [listed_item(item) for item in items[:limit]]
        first, last = (page[0]["id"], page[-1]["id"]) if page else (None, None)
        return InputItemList(data=page, first_id=first, last_id=last, has_more=len(items) > limit)

    async def delete(self, response_id: str) -> ResponseDeleted:
        if not await self._store.delete(response_id):
            raise NotFound(f"No response with id `{response_id}`.")
        return ResponseDeleted(id=response_id)

    async def _history(self, req: ResponseRequest) -> list[InputItem]:
        if req.previous_response_id is None:
            return []
        previous = await self._store.get(req.previous_response_id)
        if previous is None:
            raise NotFound(
                f"Previous response with id `{req.previous_response_id}` not found.", param="previous_response_id"
            )
        return [*previous.conversation, *(as_input_item(item) for item in previous.response.output)]

    # Generation

    def _spec(self, req: ResponseRequest, conversation: list[InputItem]) -> GenerationSpec:
        prompt = to_chat_messages(req.instructions, conversation)
        if not any(m["role"] != "system" for m in prompt.messages):
            raise InvalidRequest("input has no message for the model to answer.", param="input")
        chat = ChatInput(
            prompt,
            tools=chat_tools(req.tools),
            tool_choice=wire_tool_choice(req.tool_choice),
            parallel_tool_calls=req.parallel_tool_calls is not False,
            template_kwargs=req.chat_template_kwargs,
        )
        logprobs = LOGPROBS_INCLUDE in (req.include or []) or req.top_logprobs is not None
        fields = sampling_fields(
            req, max_tokens=req.max_output_tokens, logprobs=(req.top_logprobs or 0) if logprobs else None
        )
        grammar = text_format_grammar(req.text.format.model_dump()) if req.text else None
        return GenerationSpec(f"resp_{uuid.uuid4().hex}", req.model, chat, fields, grammar)

    async def prepare(self, req: ResponseRequest) -> PreparedResponse:
        """Validate, template, tokenize and admit to the engine; raises before any response is sent."""
        reject_unsupported(req)
        if req.store:  # a response that could not be kept is refused now, not lost after generating it
            await self._store.check()
        conversation = [*(await self._history(req)), *input_items(req.input)]
        generation = await self._preparer.prepare(self._spec(req, conversation))
        return PreparedResponse(generation, _response_object(req, generation), conversation)

    async def complete(self, p: PreparedResponse) -> ResponseObject:
        async for _ in self._run(p):
            pass
        if p.failure is not None:
            raise p.failure
        return p.response

    def stream(self, p: PreparedResponse) -> AsyncIterator[ResponseEvent]:
        return self._run(p)

    async def _run(self, p: PreparedResponse) -> AsyncIterator[ResponseEvent]:
        g = p.generation
        builder = ResponseBuilder(p.response, logprobs=g.logprobs)
        try:
            for event in builder.start():
                yield event
            async for choice, engine_event in g.events():
                deltas = choice.read(engine_event)
                logprobs = token_logprobs(engine_event) if g.logprobs and isinstance(engine_event, TokenEvent) else None
                for event in builder.add(deltas, logprobs):
                    yield event
            for event in await self._finish(p, builder):
                yield event
        finally:
            with suppress(HfServeError):  # an engine failure was already turned into response.failed
                g.close()

    async def _finish(self, p: PreparedResponse, builder: ResponseBuilder) -> list[ResponseEvent]:
        """The closing events, once the response is stored (a store failure raises before any of them)."""
        finish = p.generation.choices[0].finish
        assert finish is not None, "the engine stream ended without a finish event"
        usage = ResponseUsage(
            input_tokens=finish.prompt_tokens,
            input_tokens_details=InputTokensDetails(cached_tokens=finish.cached_tokens),
            output_tokens=finish.completion_tokens,
            output_tokens_details=OutputTokensDetails(reasoning_tokens=p.generation.choices[0].reasoning_tokens),
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
            await self._store.put(p.response, p.conversation)
        return events
