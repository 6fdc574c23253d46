"""The one place that maps request fields to ``SamplingParams``.

Precedence, lowest first: the model's ``generation_config`` defaults, the request's
``generation_config`` (a JSON string or an object, as transformers serve documents), then the
request's own fields (``temperature``, ``max_tokens``...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from app.engine.types import ModelInfo, ReasoningMarkers, SamplingParams
from app.errors import InvalidRequest, PromptTooLong
from app.protocol.generation_config import GenerationConfigOverrides

# Request fields that feed ``to_sampling_params`` under the same name on every endpoint.
SAMPLING_FIELDS = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "presence_penalty",
        "frequency_penalty",
        "repetition_penalty",
        "logit_bias",
        "stop",
        "seed",
        "generation_config",
        "n",
    }
)

# generation_config fields we honour, and the request field each one maps to.
_GENERATION_FIELDS = {
    "max_new_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repetition_penalty": "repetition_penalty",
    "do_sample": "do_sample",
    "seed": "seed",
    "stop_strings": "stop",
}


def parse_generation_config(value: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """The request's ``generation_config``, validated, under request-field names."""
    if value is None:
        return {}
    try:
        if isinstance(value, str):
            overrides = GenerationConfigOverrides.model_validate_json(value)
        else:
            overrides = GenerationConfigOverrides.model_validate(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            message = f"generation_config is not valid JSON: {first['msg']}"
        elif not first["loc"]:
            message = "generation_config must be a JSON object."
        else:
            field = ".".join(str(part) for part in first["loc"])
            supported = ", ".join(GenerationConfigOverrides.model_fields)
            message = f"generation_config.{field}: {first['msg']}. Supported fields: {supported}."
        raise InvalidRequest(message, param="generation_config") from exc
    return {_GENERATION_FIELDS[key]: val for key, val in overrides.model_dump(exclude_none=True).items()}


def sampling_fields(
    req: BaseModel, *, max_tokens: int | None, logprobs: int | None, prompt_logprobs: int | None = None
) -> dict[str, Any]:
    """The sampling fields a request set, plus those each endpoint names its own way: ``max_tokens``, and
    ``logprobs`` and ``prompt_logprobs`` in the engine's meaning (None for none, else how many top
    alternatives per token)."""
    fields = req.model_dump(include=set(SAMPLING_FIELDS), exclude_none=True)
    fields["max_tokens"], fields["logprobs"] = max_tokens, logprobs
    if prompt_logprobs is not None:
        fields["prompt_logprobs"] = prompt_logprobs
    return fields


def _stop_list(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else list(stop)
    if not all(isinstance(s, str) for s in stops):
        raise InvalidRequest("stop must be a string or a list of strings.", param="stop")
    return tuple(s for s in stops if s)


def _logit_bias(bias: Mapping[str, float] | None, vocab_limit: int | None) -> dict[int, float]:
    result: dict[int, float] = {}
    for key, value in (bias or {}).items():
        try:
            token = int(key)
        except ValueError as exc:
            raise InvalidRequest(f"logit_bias keys must be token ids, got {key!r}.", param="logit_bias") from exc
        if token < 0 or (vocab_limit is not None and token >= vocab_limit) or not -100 <= value <= 100:
            raise InvalidRequest(f"logit_bias entry {key}: {value} is out of range.", param="logit_bias")
        result[token] = float(value)
    return result


def _max_tokens(requested: int | None, prompt_tokens: int, info: ModelInfo) -> int:
    """What fits after the prompt; 0 only when asked for (a prompt scored, nothing generated)."""
    room = info.max_context - prompt_tokens
    if room < 0 or (room == 0 and requested != 0):
        raise PromptTooLong(
            f"This model's maximum context length is {info.max_context} tokens, but the prompt has "
            f"{prompt_tokens} tokens. Shorten the messages.",
            param="messages",
        )
    if requested is None:
        return room
    if requested > room:
        raise PromptTooLong(
            f"This model's maximum context length is {info.max_context} tokens. However, you requested "
            f"{prompt_tokens + requested} tokens ({prompt_tokens} in the prompt, {requested} for the completion). "
            "Reduce the prompt or max_tokens.",
            param="max_tokens",
        )
    return requested


def to_sampling_params(
    fields: Mapping[str, Any],
    *,
    info: ModelInfo,
    prompt_tokens: int,
    default_seed: int | None = None,
    grammar: str | None = None,
    skip_special_tokens: bool = True,
    reasoning: ReasoningMarkers | None = None,
) -> SamplingParams:
    """``fields``: the request fields that were set, under their OpenAI names (plus ``generation_config``, and
    ``fit_max_tokens``: cap ``max_tokens`` to the context's room instead of refusing it).
    ``grammar`` constrains the output (structured output, a forced tool call); ``reasoning`` is where the
    model's reasoning block is, which stop strings do not apply to.

    ``logprobs`` here is the engine's meaning: None for none, else how many top alternatives per token.
    """
    merged: dict[str, Any] = {
        _GENERATION_FIELDS[k]: v for k, v in info.generation_defaults.items() if k in _GENERATION_FIELDS
    }
    merged.update(parse_generation_config(fields.get("generation_config")))
    merged.update({k: v for k, v in fields.items() if v is not None and k != "generation_config"})
    temperature = float(merged.get("temperature", 1.0))
    if merged.get("do_sample") is False and "temperature" not in fields:
        temperature = 0.0
    top_k = int(merged.get("top_k") or 0)
    seed = merged.get("seed", default_seed)
    if fields.get("max_tokens") is not None and fields.get("fit_max_tokens"):  # capped to what fits
        max_tokens = min(fields["max_tokens"], _max_tokens(None, prompt_tokens, info))
    elif fields.get("max_tokens") is not None:  # asked for explicitly: must fit
        max_tokens = _max_tokens(fields["max_tokens"], prompt_tokens, info)
    else:  # a generation_config default is capped to what fits
        room = _max_tokens(None, prompt_tokens, info)
        max_tokens = min(int(merged["max_tokens"]), room) if merged.get("max_tokens") else room
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=float(merged.get("top_p", 1.0)),
        top_k=max(top_k, 0),
        min_p=float(merged.get("min_p") or 0.0),
        repetition_penalty=float(merged.get("repetition_penalty", 1.0)),
        presence_penalty=float(merged.get("presence_penalty", 0.0)),
        frequency_penalty=float(merged.get("frequency_penalty", 0.0)),
        logit_bias=_logit_bias(merged.get("logit_bias"), info.vocab_size),
        seed=None if seed is None else int(seed),
        stop=_stop_list(merged.get("stop")),
        stop_token_ids=info.eos_token_ids,
        n=int(merged.get("n", 1)),
        logprobs=merged.get("logprobs"),
        prompt_logprobs=merged.get("prompt_logprobs"),
        grammar=grammar,
        skip_special_tokens=skip_special_tokens,
        reasoning=reasoning,
        # the budget ends a reasoning block; a grammar decides every token itself
        reasoning_budget=merged.get("reasoning_budget") if reasoning is not None and grammar is None else None,
    )
