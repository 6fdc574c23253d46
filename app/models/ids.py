"""Model references: ``org/name``, ``org/name@revision`` or a local directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from huggingface_hub.utils import HFValidationError, validate_repo_id

from app.errors import InvalidRequest, ModelNotFound

DEFAULT_REVISION = "main"


@dataclass(frozen=True, slots=True)
class ModelRef:
    source: str  # a Hub repo id, or an absolute local directory
    revision: str | None  # None for local directories

    @property
    def name(self) -> str:
        """The canonical key and the ``model`` echoed in responses."""
        return self.source if self.revision is None else f"{self.source}@{self.revision}"


def parse_model_ref(text: str) -> ModelRef:
    text = text.strip()
    if not text:
        raise InvalidRequest("`model` must not be empty.", param="model")
    try:
        local = Path(text).expanduser()
        is_dir = local.is_dir()
    except (OSError, RuntimeError):  # a name too long for the filesystem, or "~user" with no such user
        is_dir = False
    if is_dir:
        return ModelRef(str(local.resolve()), None)
    repo_id, _, revision = text.partition("@")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ModelNotFound(text, "It is neither a Hub model id nor a local directory.") from exc
    return ModelRef(repo_id, revision or DEFAULT_REVISION)
