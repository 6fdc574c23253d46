"""What parser selection looks at in a loaded model."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelTraits:
    """``model_type`` from the config, ``tokens``: the tokenizer's added-token strings, and the chat
    template source (empty when there is none)."""

    model_type: str = ""
    tokens: frozenset[str] = frozenset()
    chat_template: str = ""
