"""``/v1/models`` and ``/load_model`` wire schemas."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_serializer

from app.protocol.common import WireModel, WireRequest


class ModelCard(WireModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    task: str | None = None  # what the model serves: text-generation, embed, score, ... (hfserve's addition)


class ModelList(WireModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class LoadModelRequest(WireRequest):
    model: str = Field(min_length=1)


class LoadProgress(WireModel):
    """Both fields are always sent; ``total`` is null while unknown (as transformers serve documents)."""

    current: int | None
    total: int | None

    @model_serializer(mode="plain")  # unannotated: documented by its fields, not as a bare ``dict``
    def _both_fields(self):
        return {"current": self.current, "total": self.total}


class LoadModelEvent(WireModel):
    """One SSE frame of ``/load_model``, exactly the fields transformers serve documents."""

    status: Literal["loading", "ready", "error"]
    model: str
    stage: Literal["processor", "config", "download", "weights"] | None = None
    progress: LoadProgress | None = None
    cached: bool | None = None
    message: str | None = None
