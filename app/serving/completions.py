"""Legacy completions: a freeform prompt (or several, or token ids) described for the prepare path; then
its run loop: events → one completion, or chunks.

``echo`` with ``logprobs`` puts the prompt's own logprobs before the output's, as OpenAI's legacy API did (what
evaluation harnesses score with, often with ``max_tokens`` 0); vLLM's ``prompt_logprobs`` gives them in its
own shape on each choice. The engine scores the prompt; its logprobs come with each choice's first event."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from app.engine.types import FinishEvent, TokenEvent
from app.errors import InvalidRequest, UnsupportedParameter
from app.protocol.completions import Completion, CompletionChoice, CompletionLogprobs, CompletionRequest
from app.serving.generation import Choice, PreparedGeneration
from app.serving.logprobs import completion_logprobs, joined, prompt_completion_logprobs, vllm_prompt_logprobs
from app.serving.outcome import raise_for_finish
from app.serving.params import sampling_fields
from app.serving.prepare import GenerationSpec, Preparer, TextInput
from app.serving.structured import GUIDED_FIELDS, output_constraint


def _check(req: CompletionRequest) -> None:
    if req.best_of is not None and req.best_of != (req.n or 1):
        raise UnsupportedParameter("best_of other than n is not supported.", param="best_of")
    if req.max_tokens == 0 and not req.echo and req.prompt_logprobs is None:
        raise InvalidRequest(
            "max_tokens 0 generates nothing: it needs echo or prompt_logprobs (the prompt is scored).",
            param="max_tokens",
        )
    if req.prompt_logprobs is not None and req.stream:
        raise InvalidRequest("prompt_logprobs is not available with stream: true.", param="prompt_logprobs")
    if req.suffix is not None and not isinstance(req.prompt, str):
        raise InvalidRequest("suffix needs a single text prompt.", param="suffix")


def _text_input(req: CompletionRequest) -> TextInput:
    prompt, echo = req.prompt, bool(req.echo)
    if isinstance(prompt, str):
        return TextInput(texts=(prompt,), suffix=req.suffix, echo=echo)
    if all(isinstance(item, str) for item in prompt):
        return TextInput(texts=tuple(prompt), echo=echo)  # type: ignore[arg-type]
    if all(isinstance(item, int) for item in prompt):
        return TextInput(token_ids=(tuple(prompt),), echo=echo)  # type: ignore[arg-type]
    return TextInput(token_ids=tuple(tuple(ids) for ids in prompt), echo=echo)  # type: ignore[union-attr]


def _scored(req: CompletionRequest) -> int | None:
    """How many alternatives per prompt position the engine reports: None when the prompt is not scored."""
    wanted = [k for k in (req.logprobs if req.echo else None, req.prompt_logprobs) if k is not None]
    return max(wanted) if wanted else None


def to_generation_spec(req: CompletionRequest) -> GenerationSpec:
    _check(req)
    fields = sampling_fields(req, max_tokens=req.max_tokens, logprobs=req.logprobs, prompt_logprobs=_scored(req))
    grammar = output_constraint(None, req.structured_outputs, **req.model_dump(include=set(GUIDED_FIELDS)))
    return GenerationSpec(f"cmpl-{uuid.uuid4().hex}", req.model, _text_input(req), fields, grammar)


@dataclass(slots=True)
class PreparedCompletion:
    """Completions admitted to the engine; their events are read by ``complete`` or ``stream``.
    ``echo_logprobs``: the echoed prompt's logprobs lead each choice's (``echo`` with ``logprobs``);
    ``prompt_logprobs``: vLLM's field, with that many alternatives per position."""

    generation: PreparedGeneration
    include_usage: bool
    echo_logprobs: int | None = None
    prompt_logprobs: int | None = None

    def prompt_part(self, choice: Choice) -> CompletionLogprobs | None:
        """The echoed prompt's logprobs, once the choice's first event brought them."""
        if self.echo_logprobs is None or choice.prompt_logprobs is None:
            return None
        return prompt_completion_logprobs(choice.prompt_logprobs, self.echo_logprobs)

    def choice(self, choice: Choice) -> CompletionChoice:
        assert choice.finish is not None, "the engine stream ended without a finish event"
        prompt_part = self.prompt_part(choice)
        parts = ([prompt_part] if prompt_part is not None else []) + choice.logprobs
        scored = self.prompt_logprobs is not None and choice.prompt_logprobs is not None
        return CompletionChoice(
            index=choice.index,
            text=choice.echo + "".join(choice.output.content),
            logprobs=joined(parts) if self.generation.logprobs else None,
            finish_reason=choice.finish.reason,
            prompt_logprobs=vllm_prompt_logprobs(choice.prompt_logprobs, self.prompt_logprobs) if scored else None,  # type: ignore[arg-type]
        )


class CompletionService:
    def __init__(self, preparer: Preparer) -> None:
        self._preparer = preparer

    async def prepare(self, req: CompletionRequest) -> PreparedCompletion:
        """Validate, tokenize and admit every prompt; raises before any response is sent."""
        generation = await self._preparer.prepare(to_generation_spec(req))
        return PreparedCompletion(
            generation,
            bool(req.stream_options and req.stream_options.include_usage),
            echo_logprobs=req.logprobs if req.echo else None,
            prompt_logprobs=req.prompt_logprobs,
        )

    async def complete(self, p: PreparedCompletion) -> Completion:
        g = p.generation
        try:
            async for choice, event in g.events():
                offset = len(choice.echo) + choice.output.length
                choice.output.add(choice.parser.feed(event.text))
                if g.logprobs and isinstance(event, TokenEvent):
                    choice.logprobs.append(completion_logprobs(event, offset))
        finally:
            g.close()
        choices = [p.choice(choice) for choice in g.choices]
        return Completion(id=g.id, created=g.created, model=g.model, choices=choices, usage=g.usage())

    async def stream(self, p: PreparedCompletion) -> AsyncIterator[Completion]:
        g = p.generation

        def chunk(index: int, text: str, finish: str | None = None, lp: CompletionLogprobs | None = None):
            choice = CompletionChoice(index=index, text=text, logprobs=lp, finish_reason=finish)
            return Completion(id=g.id, created=g.created, model=g.model, choices=[choice])

        try:
            for choice in g.choices:
                if choice.echo and p.echo_logprobs is None:
                    yield chunk(choice.index, choice.echo)
            async for choice, event in g.events():
                if event.prompt_logprobs is not None and p.echo_logprobs is not None:  # the echo, with its logprobs
                    yield chunk(choice.index, choice.echo, lp=p.prompt_part(choice))
                offset = len(choice.echo) + choice.output.length
                choice.output.add(choice.parser.feed(event.text))
                if isinstance(event, FinishEvent):
                    raise_for_finish(event)
                    yield chunk(choice.index, event.text, finish=event.reason)
                elif event.text or event.logprobs:
                    lp = completion_logprobs(event, offset) if g.logprobs else None
                    yield chunk(choice.index, event.text, lp=lp)
            if p.include_usage:
                yield Completion(id=g.id, created=g.created, model=g.model, choices=[], usage=g.usage())
        finally:
            g.close()
