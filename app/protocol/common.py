"""Shared wire pieces: the base for requests (extra fields kept for logging) and usage."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class WireRequest(BaseModel):
    """Request bodies accept unknown fields (logged once by the API layer), as OpenAI clients send many.
    Known fields are strict: no coercion that could change a value's meaning (``0`` is not ``false``,
    ``false`` is not token 0, ``"1"`` is not 1); an integer is still taken where a number is expected."""

    model_config = ConfigDict(extra="allow", strict=True)


StopText = Annotated[str, Field(max_length=512)]


class SamplingRequest(WireRequest):
    """The sampling fields every generating endpoint takes, with the same bounds everywhere
    (``app.serving.params.SAMPLING_FIELDS`` lists the ones passed through by name)."""

    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=-1)
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    repetition_penalty: float | None = Field(None, gt=0.0)
    logit_bias: dict[str, float] | None = None
    stop: StopText | Annotated[list[StopText], Field(max_length=16)] | None = None
    seed: int | None = Field(None, ge=-(2**63), lt=2**63)
    n: int | None = Field(None, ge=1, le=128)
    user: str | None = None
    generation_config: str | dict[str, Any] | None = None


class ConstrainedRequest(SamplingRequest):
    """Sampling plus vLLM's structured-output fields (chat and completions): ``structured_outputs``
    (``json``, ``regex``, ``choice``, ``grammar``, ``json_object``) and the older ``guided_*`` fields."""

    structured_outputs: dict[str, Any] | None = None
    guided_json: str | dict[str, Any] | None = None
    guided_regex: str | None = None
    guided_choice: list[str] | None = None
    guided_grammar: str | None = None


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PromptTokenLogprob(WireModel):
    """One entry of vLLM's ``prompt_logprobs``: a token's logprob at a prompt position, its rank there (1: the
    most likely) and its text."""

    logprob: float
    rank: int
    decoded_token: str


# vLLM's ``prompt_logprobs``: None for the first prompt token (nothing comes before it), then per position the
# prompt token and the most likely tokens there, keyed by token id.
PromptLogprobs = list[dict[str, PromptTokenLogprob] | None]


class CompletionTokensDetails(WireModel):
    reasoning_tokens: int = 0


class PromptTokensDetails(WireModel):
    cached_tokens: int = 0  # prompt tokens whose KV came from the prefix cache


class Usage(WireModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    completion_tokens_details: CompletionTokensDetails | None = None
    prompt_tokens_details: PromptTokensDetails | None = None


class ErrorDetail(WireModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(WireModel):
    """Every error body (``app.errors.HfServeError.body``), in OpenAI's shape."""

    error: ErrorDetail
