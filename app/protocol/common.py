"""Shared wire pieces: the base for requests (extra fields kept for logging) and usage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class WireRequest(BaseModel):
    """Request bodies accept unknown fields (logged once by the API layer), as OpenAI clients send many."""

    model_config = ConfigDict(extra="allow")


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Usage(WireModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
