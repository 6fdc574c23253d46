"""Parsed deltas → the Responses stream's events and output items.

One builder per response; streaming and non-streaming calls both run it, so the ``response.completed``
object is, by construction, the one a non-streaming call returns. Exactly one output item is open at a
time: a change of kind (reasoning → text → function call) or a new function call closes the open one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Literal

from app.parsers.base import ParsedDelta, ToolCallDelta
from app.protocol.chat import TokenLogprob
from app.protocol.response_objects import (
    ArgumentsDeltaEvent,
    ArgumentsDoneEvent,
    ContentPartEvent,
    FunctionCallOutput,
    IncompleteDetails,
    LifecycleEvent,
    OutputItem,
    OutputItemEvent,
    OutputMessage,
    OutputText,
    ReasoningContent,
    ReasoningOutput,
    ResponseError,
    ResponseEvent,
    ResponseObject,
    ResponseUsage,
    TextDeltaEvent,
    TextDoneEvent,
)

Terminal = Literal["completed", "incomplete", "failed"]


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class ResponseBuilder:
    def __init__(self, response: ResponseObject, *, logprobs: bool = False) -> None:
        self.response = response
        self._logprobs = logprobs
        self._sequence = 0
        self._open: OutputItem | None = None
        self._open_call: int | None = None  # the parser's index of the open function call

    # Lifecycle

    def start(self) -> list[ResponseEvent]:
        return [self._lifecycle("response.created"), self._lifecycle("response.in_progress")]

    def finish(
        self,
        status: Terminal,
        usage: ResponseUsage | None,
        *,
        incomplete_reason: str | None = None,
        error: ResponseError | None = None,
    ) -> list[ResponseEvent]:
        events = self._close("completed" if status == "completed" else "incomplete")
        self.response.status = status
        self.response.usage = usage
        self.response.error = error
        self.response.incomplete_details = IncompleteDetails(reason=incomplete_reason) if incomplete_reason else None
        events.append(self._lifecycle(f"response.{status}"))
        return events

    # Output

    def add(self, deltas: Iterable[ParsedDelta], logprobs: list[TokenLogprob] | None = None) -> list[ResponseEvent]:
        """Events for one engine step's deltas; its logprobs go with the first output text it produced."""
        events: list[ResponseEvent] = []
        for delta in deltas:
            if delta.reasoning:
                events += self._reasoning(delta.reasoning)
            if delta.content:
                events += self._text(delta.content, logprobs)
                logprobs = None
            for call in delta.tool_calls:
                events += self._tool_call(call)
        return events

    def _reasoning(self, text: str) -> list[ResponseEvent]:
        events: list[ResponseEvent] = []
        item = self._open
        if not isinstance(item, ReasoningOutput):
            events += self._close("completed")
            item = ReasoningOutput(id=_new_id("rs"), status="in_progress", content=[ReasoningContent()])
            events += self._open_item(item)
        item.content[0].text += text
        events.append(self._delta("response.reasoning_text.delta", item.id, text, None))
        return events

    def _text(self, text: str, logprobs: list[TokenLogprob] | None) -> list[ResponseEvent]:
        events: list[ResponseEvent] = []
        item = self._open
        if not isinstance(item, OutputMessage):
            events += self._close("completed")
            item = OutputMessage(id=_new_id("msg"), status="in_progress")
            events += self._open_item(item)
            item.content.append(OutputText(logprobs=[] if self._logprobs else None))
            events.append(self._part("response.content_part.added", item, self._index()))
        part = item.content[0]
        part.text += text
        logprobs = logprobs or []  # OpenAI always sends the list on output_text events
        if part.logprobs is not None:  # set to [] when the request asked for logprobs
            part.logprobs.extend(logprobs)
        events.append(self._delta("response.output_text.delta", item.id, text, logprobs))
        return events

    def _tool_call(self, call: ToolCallDelta) -> list[ResponseEvent]:
        events: list[ResponseEvent] = []
        item = self._open
        if not isinstance(item, FunctionCallOutput) or self._open_call != call.index:
            events += self._close("completed")
            item = FunctionCallOutput(
                id=_new_id("fc"), status="in_progress", call_id=call.id or _new_id("call"), name=call.name or ""
            )
            events += self._open_item(item)
            self._open_call = call.index
        if call.arguments:
            item.arguments += call.arguments
            events.append(
                ArgumentsDeltaEvent(
                    sequence_number=self._next(),
                    item_id=item.id,
                    output_index=self._index(),
                    delta=call.arguments,
                )
            )
        return events

    # Item boundaries

    def _open_item(self, item: OutputItem) -> list[ResponseEvent]:
        self.response.output.append(item)
        self._open = item
        return [self._item("response.output_item.added", item, self._index())]

    def _close(self, status: Literal["completed", "incomplete"]) -> list[ResponseEvent]:
        item, self._open, self._open_call = self._open, None, None
        if item is None:
            return []
        index = len(self.response.output) - 1
        events: list[ResponseEvent] = []
        if isinstance(item, ReasoningOutput):
            text = item.content[0].text
            events.append(self._done("response.reasoning_text.done", item.id, index, text, None))
        elif isinstance(item, OutputMessage):
            part = item.content[0]
            events.append(self._done("response.output_text.done", item.id, index, part.text, part.logprobs or []))
            events.append(self._part("response.content_part.done", item, index))
        else:
            events.append(
                ArgumentsDoneEvent(
                    sequence_number=self._next(),
                    item_id=item.id,
                    output_index=index,
                    name=item.name,
                    arguments=item.arguments,
                )
            )
        item.status = status
        events.append(self._item("response.output_item.done", item, index))
        return events

    # Event construction: snapshots are deep copies, so later deltas never change an event already made.

    def _next(self) -> int:
        number, self._sequence = self._sequence, self._sequence + 1
        return number

    def _index(self) -> int:
        return len(self.response.output) - 1

    def _lifecycle(self, kind: str) -> LifecycleEvent:
        snapshot = self.response.model_copy(deep=True)
        return LifecycleEvent(type=kind, sequence_number=self._next(), response=snapshot)  # type: ignore[arg-type]

    def _item(self, kind: str, item: OutputItem, index: int) -> OutputItemEvent:
        return OutputItemEvent(
            type=kind,  # type: ignore[arg-type]
            sequence_number=self._next(),
            output_index=index,
            item=item.model_copy(deep=True),
        )

    def _part(self, kind: str, item: OutputMessage, index: int) -> ContentPartEvent:
        return ContentPartEvent(
            type=kind,  # type: ignore[arg-type]
            sequence_number=self._next(),
            item_id=item.id,
            output_index=index,
            content_index=0,
            part=item.content[0].model_copy(deep=True),
        )

    def _delta(self, kind: str, item_id: str, text: str, logprobs: list[TokenLogprob] | None) -> TextDeltaEvent:
        return TextDeltaEvent(
            type=kind,  # type: ignore[arg-type]
            sequence_number=self._next(),
            item_id=item_id,
            output_index=self._index(),
            content_index=0,
            delta=text,
            logprobs=logprobs,
        )

    def _done(
        self, kind: str, item_id: str, index: int, text: str, logprobs: list[TokenLogprob] | None
    ) -> TextDoneEvent:
        return TextDoneEvent(
            type=kind,  # type: ignore[arg-type]
            sequence_number=self._next(),
            item_id=item_id,
            output_index=index,
            content_index=0,
            text=text,
            logprobs=logprobs,
        )
