"""The tokenize service's own decisions: the template options a chat gets, prompt or messages (one of
them), and speech models refused. What it renders is the prepare path's (tests/api/test_tokenize.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from app.engine.types import ModelInfo, ServingModel
from app.errors import InvalidRequest
from app.protocol.chat import ChatMessage
from app.protocol.tokenize import DetokenizeRequest, TokenizeRequest
from app.serving.prepare import Preparer, PromptDefaults
from app.serving.tokenize import TokenizeService, chat_template_kwargs, to_chat_input

HELLO = [ChatMessage(role="user", content="Hello")]


def test_a_generation_prompt_is_added_unless_the_final_message_is_continued() -> None:
    assert chat_template_kwargs(TokenizeRequest(messages=HELLO)) == {"add_generation_prompt": True}
    off = TokenizeRequest(messages=HELLO, add_generation_prompt=False)
    assert chat_template_kwargs(off) == {"add_generation_prompt": False}
    continued = TokenizeRequest(messages=HELLO, continue_final_message=True)
    assert chat_template_kwargs(continued) == {"continue_final_message": True}


def test_chat_template_kwargs_go_over_the_top_level_options() -> None:
    req = TokenizeRequest(
        messages=HELLO, chat_template_kwargs={"enable_thinking": False, "add_generation_prompt": False}
    )
    assert chat_template_kwargs(req) == {"add_generation_prompt": False, "enable_thinking": False}


def test_continuing_the_final_message_and_a_generation_prompt_conflict() -> None:
    req = TokenizeRequest(messages=HELLO, continue_final_message=True, add_generation_prompt=True)
    with pytest.raises(InvalidRequest) as info:
        chat_template_kwargs(req)
    assert info.value.param == "continue_final_message"


def test_exactly_one_of_prompt_and_messages() -> None:
    assert to_chat_input(TokenizeRequest(prompt="hi")) is None
    chat = to_chat_input(TokenizeRequest(messages=HELLO, tools=[{"type": "function"}]))
    assert chat is not None and chat.prompt.messages == [{"role": "user", "content": "Hello"}]
    assert chat.tools == [{"type": "function"}]
    with pytest.raises(InvalidRequest) as neither:
        to_chat_input(TokenizeRequest())
    assert neither.value.param == "prompt"
    with pytest.raises(InvalidRequest) as both:
        to_chat_input(TokenizeRequest(prompt="hi", messages=HELLO))
    assert both.value.param == "messages"


class _SpeechRegistry:
    """A registry holding one speech-to-text model (no engine or renderer is reached)."""

    def __init__(self) -> None:
        info = ModelInfo("org/whisper@main", 448, (0,), {}, task="speech-to-text")
        self.model = ServingModel(info, None, None)  # type: ignore[arg-type]

    def resolve(self, requested: str | None) -> str:
        return requested or "org/whisper"

    @asynccontextmanager
    async def lease(self, ref: str) -> AsyncIterator[ServingModel]:
        yield self.model


async def test_speech_models_have_no_text_prompt_to_tokenize() -> None:
    registry = _SpeechRegistry()
    service = TokenizeService(registry, Preparer(registry, PromptDefaults({})))  # type: ignore[arg-type]
    for call in (service.tokenize(TokenizeRequest(prompt="hi")), service.detokenize(DetokenizeRequest(tokens=[1]))):
        with pytest.raises(InvalidRequest, match="speech-to-text") as info:
            await call
        assert info.value.param == "model"
