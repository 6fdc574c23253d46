"""ChatService: what a request is refused for, how it is described for the prepare path, and its run loop
over scripted engine streams (choices, tool calls, logprobs, usage, failures, abandoned streams)."""

from __future__ import annotations

import pytest

from app.engine.types import FinishEvent, TokenEvent, TokenLogprob
from app.errors import EngineFailure, InvalidRequest
from app.parsers.base import ParsedDelta, ToolCallDelta
from app.protocol.chat import ChatCompletionRequest
from app.serving.chat import ChatService, PreparedChat, to_generation_spec
from app.serving.prepare import ChatInput
from tests.serving.scripted import closed, prepared


class CallsOnBang:
    """``!`` is a tool call: a stand-in for a model family's tool parser."""

    def __init__(self) -> None:
        self._calls = 0

    def feed(self, text: str) -> list[ParsedDelta]:
        if text != "!":
            return [ParsedDelta(content=text)] if text else []
        self._calls += 1
        call = ToolCallDelta(index=self._calls - 1, id=f"call_{self._calls}", name="f", arguments="{}")
        return [ParsedDelta(tool_calls=[call])]

    def finish(self) -> list[ParsedDelta]:
        return []


def _request(**fields: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": "hi"}], **fields})


def _service() -> ChatService:
    return ChatService(preparer=None)  # type: ignore[arg-type]


def _token(text: str, index: int = 0, logprob: float | None = None) -> TokenEvent:
    if logprob is None:
        return TokenEvent("req-1", (1,), text, index)
    return TokenEvent("req-1", (1,), text, index, (TokenLogprob(1, text, logprob),), ((),))


def test_the_request_is_described_for_the_prepare_path() -> None:
    spec = to_generation_spec(
        _request(max_completion_tokens=5, max_tokens=9, logprobs=True, top_logprobs=2, temperature=0.5, n=2)
    )
    assert spec.request_id.startswith("chatcmpl-") and spec.format_grammar is None
    assert isinstance(spec.prompt, ChatInput) and spec.prompt.prompt.messages == [{"role": "user", "content": "hi"}]
    assert dict(spec.sampling) == {"max_tokens": 5, "logprobs": 2, "temperature": 0.5, "n": 2}
    assert to_generation_spec(_request(response_format={"type": "json_object"})).format_grammar


@pytest.mark.parametrize(
    ("fields", "param"),
    [({"top_logprobs": 2}, "top_logprobs"), ({"tool_choice": "required"}, "tool_choice")],
)
def test_unsupported_combinations_are_refused(fields: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_generation_spec(_request(**fields))
    assert caught.value.param == param


async def test_complete_builds_one_message_per_choice() -> None:
    events = [
        _token("Hi", 0),
        _token("!", 1),
        FinishEvent("req-1", "stop", 3, 1),
        FinishEvent("req-1", "stop", 3, 1, index=1),
    ]
    p = PreparedChat(prepared(events, n=2, parser=CallsOnBang), include_usage=False)
    completion = await _service().complete(p)
    first, second = completion.choices
    assert (first.message.content, first.finish_reason, first.message.tool_calls) == ("Hi", "stop", None)
    assert second.message.content is None and second.finish_reason == "tool_calls"
    assert second.message.tool_calls == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ]
    assert completion.usage.completion_tokens == 2 and closed(p.generation)


async def test_stream_sends_role_deltas_logprobs_finish_and_usage() -> None:
    events = [_token("Hi", logprob=-0.5), FinishEvent("req-1", "length", 3, 1)]
    p = PreparedChat(prepared(events, logprobs=0), include_usage=True)
    chunks = [chunk async for chunk in _service().stream(p)]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[1].choices[0].delta.content == "Hi" and chunks[1].choices[0].logprobs.content[0].logprob == -0.5
    assert chunks[2].choices[0].finish_reason == "length"
    assert chunks[3].choices == [] and chunks[3].usage.total_tokens == 4


async def test_an_engine_failure_ends_the_stream_with_an_error_and_closes() -> None:
    p = PreparedChat(prepared([_token("a"), FinishEvent("req-1", "error", 3, 1, error="boom")]), include_usage=False)
    with pytest.raises(EngineFailure, match="boom"):
        async for _ in _service().stream(p):
            pass
    assert closed(p.generation)


async def test_an_abandoned_stream_is_closed() -> None:
    p = PreparedChat(prepared([_token("a"), _token("b"), FinishEvent("req-1", "stop", 3, 2)]), include_usage=False)
    stream = _service().stream(p)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content == "a":
            break
    await stream.aclose()
    assert closed(p.generation)
