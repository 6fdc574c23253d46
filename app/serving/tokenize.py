"""``/tokenize`` and ``/detokenize``: a prompt or a chat turned into the model's token ids, and back.

A chat is rendered by the prepare path's own ``Preparer.encode_chat`` (the server's template defaults,
the tools, media fetched and processed), so its ``count`` is what a chat completion with the same
messages is charged as ``usage.prompt_tokens``. Tokenizing runs in a worker thread, never on the loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from app.engine.types import ModelInfo, ServingModel
from app.errors import InvalidRequest
from app.models.registry import ModelRegistry
from app.protocol.tokenize import DetokenizeRequest, DetokenizeResponse, TokenizeRequest, TokenizeResponse
from app.serving.chat_messages import to_template_messages
from app.serving.prepare import ChatInput, Preparer
from app.serving.transcriptions import SPEECH_TASK


def chat_template_kwargs(req: TokenizeRequest) -> dict[str, Any]:
    """``add_generation_prompt`` (true unless the final message is continued) and ``continue_final_message``,
    then the request's ``chat_template_kwargs`` over them, as vLLM merges them."""
    if req.continue_final_message and req.add_generation_prompt:
        raise InvalidRequest(
            "continue_final_message and add_generation_prompt cannot both be true.", param="continue_final_message"
        )
    kwargs: dict[str, Any] = {}
    if req.continue_final_message:
        kwargs["continue_final_message"] = True
    else:
        kwargs["add_generation_prompt"] = req.add_generation_prompt is not False
    kwargs.update(req.chat_template_kwargs or {})
    return kwargs


def to_chat_input(req: TokenizeRequest) -> ChatInput | None:
    """The chat to render, or None for a plain prompt; exactly one of the two must be given."""
    if req.prompt is None and req.messages is None:
        raise InvalidRequest("Send `prompt` (a text) or `messages` (a chat) to tokenize.", param="prompt")
    if req.prompt is not None and req.messages is not None:
        raise InvalidRequest("Send `prompt` or `messages`, not both.", param="messages")
    if req.messages is None:
        return None
    return ChatInput(to_template_messages(req.messages), tools=req.tools, template_kwargs=chat_template_kwargs(req))


def _check_tokenizes(info: ModelInfo) -> None:
    if info.task == SPEECH_TASK:
        raise InvalidRequest(
            f"`{info.name}` is a speech-to-text model: its prompt is audio, so it has no text prompt to tokenize.",
            param="model",
        )


class TokenizeService:
    def __init__(self, registry: ModelRegistry, preparer: Preparer) -> None:
        self._registry = registry
        self._preparer = preparer

    async def tokenize(self, req: TokenizeRequest) -> TokenizeResponse:
        chat = to_chat_input(req)
        async with self._registry.lease(self._registry.resolve(req.model)) as model:
            _check_tokenizes(model.info)
            if chat is not None:
                ids, _ = await self._preparer.encode_chat(model, chat, special_tokens=req.add_special_tokens is True)
            else:
                ids = await self._encode_prompt(model, req.prompt or "", req.add_special_tokens is not False)
            strs = await asyncio.to_thread(model.renderer.token_strings, ids) if req.return_token_strs else None
        return TokenizeResponse(count=len(ids), max_model_len=model.info.max_context, tokens=ids, token_strs=strs)

    async def detokenize(self, req: DetokenizeRequest) -> DetokenizeResponse:
        async with self._registry.lease(self._registry.resolve(req.model)) as model:
            _check_tokenizes(model.info)
            text = await asyncio.to_thread(model.renderer.detokenize, req.tokens)
        return DetokenizeResponse(prompt=text)

    @staticmethod
    async def _encode_prompt(model: ServingModel, prompt: str, special_tokens: bool) -> list[int]:
        return await asyncio.to_thread(model.renderer.encode_text, prompt, special_tokens=special_tokens)
