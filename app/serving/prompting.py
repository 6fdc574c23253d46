"""Chat-style prompting shared by chat completions and responses: tool choice, templating off the event
loop, the output plan (parsers) and the grammar a request's output must follow."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.engine.types import ModelInfo, SamplingParams, ServingModel
from app.errors import InvalidRequest
from app.serving.media import MediaConfig, encode_prompt
from app.serving.output import OutputPlan, plan_output
from app.serving.params import to_sampling_params
from app.serving.structured import chosen_tools, tool_call_grammar


@dataclass(frozen=True, slots=True)
class ChatDefaults:
    """Server-wide defaults from the command line."""

    chat_template_kwargs: dict[str, Any]
    reasoning: str = "auto"  # auto | on | off
    default_seed: int | None = None
    tool_call_parser: str | None = None  # --tool-call-parser: overrides detection


def template_kwargs(defaults: ChatDefaults, requested: Mapping[str, Any] | None) -> dict[str, Any]:
    """Server defaults, then ``--reasoning``, then what the request asks for."""
    kwargs = dict(defaults.chat_template_kwargs)
    if defaults.reasoning != "auto":
        kwargs["enable_thinking"] = defaults.reasoning == "on"
    kwargs.update(requested or {})
    return kwargs


_TAIL_TOKENS = 16  # enough to see whether the template opened (or closed) a reasoning block


@dataclass(frozen=True, slots=True)
class Rendered:
    prompt: list[int]
    plan: OutputPlan
    grammar: str | None
    inputs: Mapping[str, Any] | None = None  # processed media for the engine

    def sampling(self, fields: Mapping[str, Any], info: ModelInfo, default_seed: int | None) -> SamplingParams:
        """The request's sampling fields, plus what rendering decided (grammar, special-token text)."""
        return to_sampling_params(
            fields,
            info=info,
            prompt_tokens=len(self.prompt),
            default_seed=default_seed,
            grammar=self.grammar,
            skip_special_tokens=not self.plan.keep_special_tokens,
        )


def check_tool_choice(tool_choice: Any, tools: list[dict[str, Any]] | None, param: str = "tool_choice") -> None:
    if tool_choice is None or tool_choice in ("auto", "none"):
        return
    if tool_choice != "required" and not isinstance(tool_choice, dict):
        raise InvalidRequest("tool_choice must be auto, none, required or a function.", param=param)
    if not tools:
        raise InvalidRequest("tool_choice requires tools.", param=param)


async def render_chat(
    model: ServingModel,
    messages: list[dict[str, Any]],
    *,
    tools: list[dict[str, Any]] | None,
    tool_choice: Any,
    parallel_tool_calls: bool,
    chat_template_kwargs: Mapping[str, Any] | None,
    defaults: ChatDefaults,
    format_grammar: str | None,
    media: MediaConfig,
) -> Rendered:
    """``tools`` in chat form; ``format_grammar``: the response format's constraint, if any. Media in
    the messages are fetched and decoded first (``encode_prompt``)."""
    offered = tools if tool_choice != "none" else None
    kwargs = template_kwargs(defaults, chat_template_kwargs)
    prompt, inputs = await encode_prompt(model, messages, media, tools=offered, template_kwargs=kwargs)
    tail = model.renderer.decode(prompt[-_TAIL_TOKENS:])  # a few tokens: cheap enough for the loop
    plan = plan_output(
        model.info,
        tools=offered,
        tool_parser=defaults.tool_call_parser,
        parallel_tool_calls=parallel_tool_calls,
        prompt_tail=tail,
    )
    grammar = format_grammar
    if offered and tool_choice not in (None, "auto"):
        if format_grammar is not None:
            raise InvalidRequest("A forced tool call and a response format cannot be combined.", param="tool_choice")
        grammar = tool_call_grammar(
            plan.tool_parser_name,
            chosen_tools(offered, tool_choice),
            parallel=parallel_tool_calls,
            tokens=model.info.added_tokens,
        )
    return Rendered(prompt, plan, grammar, inputs)
