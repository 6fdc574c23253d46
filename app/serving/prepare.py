"""The one prepare path of every generating endpoint.

An endpoint validates its request and describes it in endpoint-neutral terms (``GenerationSpec``);
``Preparer.prepare`` then resolves and leases the model, renders the chat template (fetching and decoding
media first, when there are any) or tokenizes raw prompts, maps the sampling fields, and admits one
``GenerationRequest`` per prompt to the engine. What comes back, a ``PreparedGeneration``
(``generation.py``), holds one ``Choice`` per output choice; each endpoint's run loop reads its events and
builds its own output.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from app.engine.types import (
    EngineClient,
    EventStream,
    GenerationRequest,
    MediaRenderer,
    ModelInfo,
    PromptRenderer,
    ServingModel,
)
from app.errors import InvalidRequest, UnsupportedParameter
from app.media.limits import MediaLimits
from app.models.registry import ModelRegistry
from app.protocol.tools import NamedToolChoice, ToolChoice
from app.serving.chat_messages import ChatPrompt
from app.serving.generation import Choice, PreparedGeneration
from app.serving.media import MediaConfig, MediaRef, load_media
from app.serving.output import OutputPlan, plan_output
from app.serving.params import to_sampling_params
from app.serving.pooling import refuse_pooling_model
from app.serving.structured import chosen_tools, tool_call_grammar


@dataclass(frozen=True, slots=True)
class PromptDefaults:
    """Server-wide defaults from the command line."""

    chat_template_kwargs: dict[str, Any]
    reasoning: str = "auto"  # auto | on | off
    default_seed: int | None = None
    tool_call_parser: str | None = None  # --tool-call-parser: overrides detection


@dataclass(frozen=True, slots=True)
class ChatInput:
    """A conversation for the chat template, with what else the template is given."""

    prompt: ChatPrompt
    tools: list[dict[str, Any]] | None = None  # chat form
    tool_choice: Any = None
    parallel_tool_calls: bool = True
    template_kwargs: Mapping[str, Any] | None = None  # the request's own


@dataclass(frozen=True, slots=True)
class TextInput:
    """Prompts taken as they are (legacy completions): texts (encoded with special tokens), token ids, or
    one text and the ``suffix`` to fill in after it. ``echo``: each choice's output starts with its prompt."""

    texts: tuple[str, ...] = ()
    token_ids: tuple[tuple[int, ...], ...] = ()
    suffix: str | None = None
    echo: bool = False


@dataclass(frozen=True, slots=True)
class GenerationSpec:
    """A validated request, as every endpoint describes it."""

    request_id: str
    model: str | None
    prompt: ChatInput | TextInput
    sampling: Mapping[str, Any]  # see ``params.sampling_fields``
    format_grammar: str | None = None  # the output's constraint (response format, structured outputs), if any


@dataclass(frozen=True, slots=True)
class _Rendered:
    prompts: list[list[int]]
    plan: OutputPlan
    grammar: str | None = None
    inputs: Mapping[str, Any] | None = None  # processed media for the engine
    echoes: tuple[str, ...] = ()


_TAIL_TOKENS = 16  # enough to see whether the template opened (or closed) a reasoning block


def check_tool_choice(tool_choice: ToolChoice | None, tools: Sequence[Any] | None, param: str = "tool_choice") -> None:
    if tool_choice is None or tool_choice in ("auto", "none"):
        return
    if not tools:
        raise InvalidRequest("tool_choice requires tools.", param=param)
    if isinstance(tool_choice, NamedToolChoice):
        if tool_choice.type != "function":
            raise UnsupportedParameter(f"tool_choice of type `{tool_choice.type}` is not supported.", param=param)
        if (tool_choice.name is None) == (tool_choice.function is None):
            raise InvalidRequest("A forced tool names one function: `function.name` or `name`.", param=param)


def wire_tool_choice(tool_choice: ToolChoice | None) -> str | dict[str, Any] | None:
    """The checked ``tool_choice`` as the plain value the prepare path and the echoed response take."""
    return tool_choice.model_dump(exclude_none=True) if isinstance(tool_choice, NamedToolChoice) else tool_choice


def template_kwargs(defaults: PromptDefaults, requested: Mapping[str, Any] | None) -> dict[str, Any]:
    """Server defaults, then ``--reasoning``, then what the request asks for."""
    kwargs = dict(defaults.chat_template_kwargs)
    if defaults.reasoning != "auto":
        kwargs["enable_thinking"] = defaults.reasoning == "on"
    kwargs.update(requested or {})
    return kwargs


def check_supported(refs: list[MediaRef], info: ModelInfo, limits: MediaLimits) -> None:
    """A model that cannot take a modality answers 400 naming the part: never a silent drop."""
    for ref in refs:
        if ref.kind not in info.modalities:
            takes = ", ".join(sorted(info.modalities))
            raise InvalidRequest(
                f"The model `{info.name}` does not take {ref.kind} input (it takes {takes}); content of type "
                f"`{ref.part_type}` is not supported.",
                param=ref.param,
            )
    if len(refs) > limits.max_parts:
        raise InvalidRequest(
            f"At most {limits.max_parts} media parts per request (--max-media-per-request).", param=refs[-1].param
        )


def admit(engine: EngineClient, requests: list[GenerationRequest]) -> list[EventStream]:
    """Admission may refuse (429) any of them: then none of them runs on for nobody."""
    streams: list[EventStream] = []
    try:
        for request in requests:
            streams.append(engine.generate(request))
    except BaseException:
        for stream in streams:
            stream.close()
        raise
    return streams


def _offered_tools(chat: ChatInput) -> list[dict[str, Any]] | None:
    """The tools the template is shown: none when ``tool_choice`` is ``none``."""
    return chat.tools if chat.tool_choice != "none" else None


def _encode_text(text: TextInput, renderer: PromptRenderer) -> list[list[int]]:
    """Blocking (tokenizers): run off the event loop."""
    if text.suffix is not None:
        return [renderer.encode_fim(text.texts[0], text.suffix)]
    if text.texts:
        return [renderer.encode_text(prompt, special_tokens=True) for prompt in text.texts]
    return [list(ids) for ids in text.token_ids]


class Preparer:
    def __init__(self, registry: ModelRegistry, defaults: PromptDefaults, media: MediaConfig | None = None) -> None:
        self._registry = registry
        self._defaults = defaults
        self._media = media or MediaConfig()

    async def prepare(self, spec: GenerationSpec) -> PreparedGeneration:
        """Render or tokenize, map sampling fields and admit; raises before any response is sent."""
        ref = self._registry.resolve(spec.model)
        async with self._registry.lease(ref) as model:
            refuse_pooling_model(model.info)
            if isinstance(spec.prompt, ChatInput):
                rendered = await self._render_chat(model, spec.prompt, spec.format_grammar)
            else:
                rendered = await self._render_text(model, spec.prompt, spec.format_grammar)
            requests = self._requests(spec, rendered, model.info)
            streams = admit(model.engine, requests)
        params = requests[0].params
        n = params.n
        choices = [
            Choice(i * n + c, rendered.plan.parser(), echo=rendered.echoes[i] if rendered.echoes else "")
            for i in range(len(requests))
            for c in range(n)
        ]
        return PreparedGeneration(
            id=spec.request_id,
            created=int(time.time()),
            model=model.info.name,
            params=params,
            streams=streams,
            choices=choices,
            prompt_tokens=sum(len(ids) for ids in rendered.prompts),
            started=time.monotonic(),
        )

    async def count_prompt_tokens(self, model: str | None, chat: ChatInput) -> int:
        """The prompt's length in tokens, rendered as ``prepare`` renders it (media included)."""
        async with self._registry.lease(self._registry.resolve(model)) as served:
            ids, _ = await self.encode_chat(served, chat)
        return len(ids)

    def _requests(self, spec: GenerationSpec, rendered: _Rendered, info: ModelInfo) -> list[GenerationRequest]:
        """One engine request per prompt; completions' ids are numbered per prompt."""
        several = isinstance(spec.prompt, TextInput)
        requests = []
        for i, ids in enumerate(rendered.prompts):
            params = to_sampling_params(
                spec.sampling,
                info=info,
                prompt_tokens=len(ids),
                default_seed=self._defaults.default_seed,
                grammar=rendered.grammar,
                skip_special_tokens=not rendered.plan.keep_special_tokens,
                reasoning=rendered.plan.reasoning_markers(),
            )
            if params.prompt_logprobs is not None and (rendered.inputs or info.task == "speech-to-text"):
                raise InvalidRequest(
                    "Prompt logprobs are not supported for prompts with media, nor for speech-to-text models.",
                    param="prompt_logprobs",
                )
            request_id = f"{spec.request_id}-{i}" if several else spec.request_id
            group = len(rendered.prompts)
            requests.append(GenerationRequest(request_id, ids, params, inputs=rendered.inputs, group=group))
        return requests

    async def encode_chat(
        self, model: ServingModel, chat: ChatInput, *, special_tokens: bool = False
    ) -> tuple[list[int], Mapping[str, Any] | None]:
        """A chat's prompt ids (and the processor's media inputs): what a chat request is charged for, with
        the server's template defaults and the tools offered; media are checked, fetched and decoded first."""
        kwargs = template_kwargs(self._defaults, chat.template_kwargs)
        return await self._encode_chat(model, chat.prompt, _offered_tools(chat), kwargs, special_tokens)

    async def _render_chat(self, model: ServingModel, chat: ChatInput, format_grammar: str | None) -> _Rendered:
        offered = _offered_tools(chat)
        prompt, inputs = await self.encode_chat(model, chat)
        tail = model.renderer.decode(prompt[-_TAIL_TOKENS:])  # a few tokens: cheap enough for the loop
        plan = plan_output(
            model.info,
            tools=offered,
            tool_parser=self._defaults.tool_call_parser,
            parallel_tool_calls=chat.parallel_tool_calls,
            prompt_tail=tail,
        )
        grammar = format_grammar
        if offered and chat.tool_choice not in (None, "auto"):
            if format_grammar is not None:
                raise InvalidRequest(
                    "A forced tool call and a response format cannot be combined.", param="tool_choice"
                )
            grammar = tool_call_grammar(
                plan.tool_parser_name,
                chosen_tools(offered, chat.tool_choice),
                parallel=chat.parallel_tool_calls,
                tokens=model.info.added_tokens,
            )
        return _Rendered([prompt], plan, grammar, inputs)

    async def _encode_chat(
        self,
        model: ServingModel,
        prompt: ChatPrompt,
        tools: list[dict[str, Any]] | None,
        kwargs: dict[str, Any],
        special_tokens: bool,
    ) -> tuple[list[int], Mapping[str, Any] | None]:
        if not prompt.media:
            ids = await asyncio.to_thread(
                model.renderer.encode_chat,
                prompt.messages,
                tools=tools,
                template_kwargs=kwargs,
                special_tokens=special_tokens,
            )
            return ids, None
        check_supported(prompt.media, model.info, self._media.limits)
        media = await load_media(prompt.media, model.info, self._media)
        renderer = cast(MediaRenderer, model.renderer)
        encoded = await asyncio.to_thread(
            renderer.encode_chat_media,
            prompt.messages,
            media,
            tools=tools,
            template_kwargs=kwargs,
            special_tokens=special_tokens,
        )
        return encoded.ids, encoded.inputs

    async def _render_text(self, model: ServingModel, text: TextInput, grammar: str | None) -> _Rendered:
        prompts = await asyncio.to_thread(_encode_text, text, model.renderer)
        echoes: tuple[str, ...] = ()
        if text.echo:
            echoes = text.texts or tuple(model.renderer.decode(ids) for ids in prompts)
        return _Rendered(prompts, OutputPlan(), grammar, echoes=echoes)
