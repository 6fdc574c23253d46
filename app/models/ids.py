"""Model references: ``org/name``, ``org/name@revision`` or a local directory.

The operator's model (``--model``) may be any local directory, relative or with ``~``. A model a request
names may be a local directory only below an ``--allowed-local-model-path`` root, given as an absolute
path; every other path, and every name that is not a Hub id, is the same "no such model" error, which
echoes only the client's own text (never a resolved path, nor whether a directory exists).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
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


def parse_requested_ref(text: str, allowed_roots: Sequence[str] = ()) -> ModelRef:
    """The model a request names: a Hub id, or an absolute directory below one of ``allowed_roots``."""
    text = text.strip()
    if not text:
        raise InvalidRequest("`model` must not be empty.", param="model")
    if text.startswith(("/", "~", ".")) or "\\" in text:
        local = _allowed_directory(text, allowed_roots)
        if local is None:
            raise ModelNotFound(text)
        return ModelRef(local, None)
    repo_id, _, revision = text.partition("@")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ModelNotFound(text) from exc
    return ModelRef(repo_id, revision or DEFAULT_REVISION)


def _allowed_directory(text: str, roots: Sequence[str]) -> str | None:
    """``text`` as a directory below one of ``roots`` (symlinks resolved before the check), named from the
    root as the operator wrote it, so the name never shows where a link points; None otherwise."""
    if not os.path.isabs(text) or "\0" in text:
        return None
    try:
        real = os.path.realpath(text)
        for root in roots:
            root_real = os.path.realpath(os.path.expanduser(root))
            if os.path.commonpath([root_real, real]) == root_real and os.path.isdir(real):
                inside = os.path.relpath(real, root_real)
                base = os.path.normpath(os.path.abspath(os.path.expanduser(root)))
                return base if inside == "." else os.path.join(base, inside)
    except (OSError, ValueError):  # a name too long for the filesystem
        return None
    return None
