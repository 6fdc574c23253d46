"""The ``generation_config`` a request may carry (a JSON string or an object, as transformers serve documents)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from app.protocol.common import WireModel


class GenerationConfigOverrides(WireModel):
    """The transformers ``GenerationConfig`` fields a request may override, with the same bounds as the
    request's own fields. Unknown keys are rejected, never ignored; values are strict, as the request's."""

    model_config = ConfigDict(extra="forbid", strict=True)

    max_new_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0)
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    repetition_penalty: float | None = Field(None, gt=0.0)
    do_sample: bool | None = None
    seed: int | None = Field(None, ge=-(2**63), lt=2**63)
    stop_strings: str | list[str] | None = None
