"""The one prepare path, over a scripted model: text-only chats never reach the media code, media a model
cannot take are refused before any fetch, raw prompts become one numbered engine request each with
their choices indexed across prompts, and admission or the engine failing leaves nothing running."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest

from app.engine.types import (
    FinishEvent,
    GenerationRequest,
    ModelInfo,
    PromptLogprob,
    SamplingParams,
    ServingModel,
    TokenEvent,
)
from app.errors import EngineFailure, InvalidRequest, Overloaded
from app.serving.chat_messages import ChatPrompt
from app.serving.media import MediaRef
from app.serving.prepare import (
    ChatInput,
    GenerationSpec,
    Preparer,
    PromptDefaults,
    TextInput,
    admit,
    template_kwargs,
)
from tests.serving.scripted import ScriptedEvents

INFO = ModelInfo(name="org/m@main", max_context=64, eos_token_ids=(0,), generation_defaults={})


class ScriptedEngine:
    """Each request gets two tokens per choice and a stop; ``refuse_after`` requests are admitted."""

    def __init__(self, refuse_after: int | None = None) -> None:
        self.requests: list[GenerationRequest] = []
        self.streams: list[ScriptedEvents] = []
        self._refuse_after = refuse_after

    def generate(self, request: GenerationRequest) -> ScriptedEvents:
        if self._refuse_after is not None and len(self.requests) >= self._refuse_after:
            raise Overloaded("queue full")
        self.requests.append(request)
        rid, events = request.request_id, []
        for index in range(request.params.n):
            events += [
                TokenEvent(rid, (5,), "a", index),
                FinishEvent(rid, "stop", len(request.prompt_ids), 1, index=index),
            ]
        self.streams.append(ScriptedEvents(events))
        return self.streams[-1]


class ScriptedRenderer:
    def __init__(self) -> None:
        self.chats: list[list[dict[str, Any]]] = []

    def encode_chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: Any = None,
        template_kwargs: Any = None,
        special_tokens: bool = False,
    ) -> list[int]:
        self.chats.append(messages)
        return [1, 2, 3]

    def encode_text(self, text: str, *, special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def encode_fim(self, prefix: str, suffix: str) -> list[int]:
        return [ord(c) for c in prefix + suffix]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids if i > 31)


class ScriptedRegistry:
    def __init__(self, engine: ScriptedEngine, renderer: ScriptedRenderer) -> None:
        self.model = ServingModel(INFO, renderer, engine)  # type: ignore[arg-type]

    def resolve(self, requested: str | None) -> str:
        return requested or "org/m"

    @asynccontextmanager
    async def lease(self, ref: str) -> AsyncIterator[ServingModel]:
        yield self.model


def _preparer(engine: ScriptedEngine, renderer: ScriptedRenderer | None = None) -> Preparer:
    registry = ScriptedRegistry(engine, renderer or ScriptedRenderer())
    return Preparer(registry, PromptDefaults(chat_template_kwargs={"a": 1}, reasoning="off"))  # type: ignore[arg-type]


def _chat(prompt: ChatPrompt) -> GenerationSpec:
    return GenerationSpec("chatcmpl-1", None, ChatInput(prompt), {"n": 2})


async def test_a_text_only_chat_is_templated_as_is_and_admitted_once() -> None:
    engine, renderer = ScriptedEngine(), ScriptedRenderer()
    messages = [{"role": "user", "content": "hi"}]
    g = await _preparer(engine, renderer).prepare(_chat(ChatPrompt(messages)))
    assert renderer.chats == [messages]
    assert [r.request_id for r in engine.requests] == ["chatcmpl-1"] and engine.requests[0].inputs is None
    assert [c.index for c in g.choices] == [0, 1] and g.model == "org/m@main" and g.prompt_tokens == 3
    seen = [(choice.index, event.text) async for choice, event in g.events()]
    assert seen == [(0, "a"), (0, ""), (1, "a"), (1, "")]
    assert all(choice.finish is not None for choice in g.choices)
    g.close()
    assert engine.streams[0].closed and g.usage().completion_tokens == 2


async def test_a_counted_prompt_is_the_one_a_request_renders() -> None:
    """Counting renders the chat as ``prepare`` does (the template defaults, the tools offered) and admits
    nothing."""
    engine, renderer = ScriptedEngine(), ScriptedRenderer()
    messages = [{"role": "user", "content": "hi"}]
    assert await _preparer(engine, renderer).count_prompt_tokens(None, ChatInput(ChatPrompt(messages))) == 3
    assert renderer.chats == [messages] and engine.requests == []


async def test_media_the_model_cannot_take_are_refused_before_any_fetch() -> None:
    engine = ScriptedEngine()
    ref = MediaRef("image", "image_url", "messages[0].content[1]", url="http://127.0.0.1:1/a.png")
    prompt = ChatPrompt([{"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "image"}]}], [ref])
    with pytest.raises(InvalidRequest, match="does not take image input") as caught:
        await _preparer(engine).prepare(_chat(prompt))
    assert caught.value.param == "messages[0].content[1]" and engine.requests == []


async def test_raw_prompts_are_numbered_and_their_choices_indexed_across_prompts() -> None:
    engine = ScriptedEngine()
    spec = GenerationSpec("cmpl-1", None, TextInput(texts=("ab", "c"), echo=True), {"n": 2})
    g = await _preparer(engine).prepare(spec)
    assert [r.request_id for r in engine.requests] == ["cmpl-1-0", "cmpl-1-1"]
    assert [(c.index, c.echo) for c in g.choices] == [(0, "ab"), (1, "ab"), (2, "c"), (3, "c")]
    assert g.prompt_tokens == 3
    finished = {choice.index async for choice, event in g.events() if isinstance(event, FinishEvent)}
    assert finished == {0, 1, 2, 3}
    ids = await _preparer(ScriptedEngine()).prepare(
        GenerationSpec("cmpl-2", None, TextInput(token_ids=((104, 105),), echo=True), {})
    )
    assert [c.echo for c in ids.choices] == ["hi"]


def test_a_refused_admission_closes_the_requests_already_admitted() -> None:
    engine = ScriptedEngine(refuse_after=1)
    requests = [GenerationRequest(f"r-{i}", [1], SamplingParams(max_tokens=4)) for i in range(2)]
    with pytest.raises(Overloaded):
        admit(engine, requests)  # type: ignore[arg-type]
    assert engine.streams[0].closed


async def test_close_aborts_what_runs_and_raises_an_engine_failure() -> None:
    engine = ScriptedEngine()
    g = await _preparer(engine).prepare(_chat(ChatPrompt([{"role": "user", "content": "x"}])))
    g.close()  # the client left before any event: nothing to raise
    assert engine.streams[0].closed
    g.choices[0].finish = FinishEvent("chatcmpl-1", "error", 3, 0, error="boom")
    g.choices[1].finish = FinishEvent("chatcmpl-1", "stop", 3, 0, index=1)
    with pytest.raises(EngineFailure, match="boom"):
        g.close()


def test_template_kwargs_precedence() -> None:
    defaults = PromptDefaults(chat_template_kwargs={"a": 1, "enable_thinking": True}, reasoning="off")
    assert template_kwargs(defaults, None) == {"a": 1, "enable_thinking": False}
    assert template_kwargs(defaults, {"enable_thinking": True}) == {"a": 1, "enable_thinking": True}


class ScoringEngine(ScriptedEngine):
    """Puts a prompt's logprobs on each choice's first event, as the engine does when asked for them."""

    def generate(self, request: GenerationRequest) -> ScriptedEvents:
        events = list(super().generate(request)._events)
        first, *rest = (PromptLogprob(t, chr(t), -1.0, 1) for t in request.prompt_ids)
        scored = (replace(first, logprob=None, rank=None), *rest)
        self.streams[-1] = ScriptedEvents(
            replace(e, prompt_logprobs=scored) if isinstance(e, TokenEvent) else e for e in events
        )
        return self.streams[-1]


async def test_each_choice_keeps_the_prompt_logprobs_its_first_event_brings() -> None:
    spec = GenerationSpec("cmpl-1", None, TextInput(texts=("ab",)), {"n": 2, "prompt_logprobs": 1})
    g = await _preparer(ScoringEngine()).prepare(spec)
    assert g.params.prompt_logprobs == 1
    _ = [event async for _, event in g.events()]
    assert [[e.token for e in c.prompt_logprobs or ()] for c in g.choices] == [["a", "b"], ["a", "b"]]


async def test_prompt_logprobs_are_refused_for_a_speech_model() -> None:
    engine = ScriptedEngine()
    registry = ScriptedRegistry(engine, ScriptedRenderer())
    registry.model = replace(registry.model, info=replace(INFO, task="speech-to-text"))
    preparer = Preparer(registry, PromptDefaults(chat_template_kwargs={}))  # type: ignore[arg-type]
    spec = GenerationSpec("cmpl-1", None, TextInput(texts=("ab",)), {"prompt_logprobs": 0})
    with pytest.raises(InvalidRequest) as caught:
        await preparer.prepare(spec)
    assert caught.value.param == "prompt_logprobs" and engine.requests == []
