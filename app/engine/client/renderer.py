"""Chat templating and tokenization with the model's own tokenizer (blocking; run off the loop).

A prompt is never tokenized whole only to learn that it is too long: no token covers more characters
than the tokenizer's longest one (measured once per tokenizer, at load), so a text longer than the
model's context times that many characters cannot fit, and is refused before the tokenizer sees it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateError

from app.errors import InvalidRequest, PromptTooLong

# Fill-in-the-middle tokens (prefix, suffix, middle): Qwen2.5-Coder style, then StarCoder / SantaCoder style.
_FIM_STYLES = (("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"), ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"))

# apply_chat_template's own parameters: template kwargs must not collide with them.
_RESERVED = frozenset(
    {
        "conversation",
        "messages",
        "tools",
        "documents",
        "chat_template",
        "tokenize",
        "padding",
        "truncation",
        "max_length",
        "return_tensors",
        "return_dict",
        "tokenizer_kwargs",
    }
)


def longest_token_chars(tokenizer: Any) -> int:
    """The most characters one token of ``tokenizer`` stands for, bounded above by the length of its
    vocabulary strings (a byte-level token's string has one character per byte, at least one per
    character of text; a byte-fallback token's string is longer than its byte)."""
    return max(1, max(map(len, tokenizer.get_vocab()), default=1))


class ChatRenderer:
    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._longest_token = longest_token_chars(tokenizer)
        self.max_prompt_chars: int | None = None  # set by ``bound_prompts`` once the context is known

    def bound_prompts(self, max_context: int) -> None:
        """Refuse, untokenized, any text longer than ``max_context`` tokens could cover."""
        self.max_prompt_chars = max_context * self._longest_token

    def check_length(self, text: str, param: str) -> None:
        """Raise ``PromptTooLong`` for a text that could never fit the context (no tokenizing)."""
        if self.max_prompt_chars is not None and len(text) > self.max_prompt_chars:
            context = self.max_prompt_chars // self._longest_token
            raise PromptTooLong(
                f"This model's maximum context length is {context} tokens, and the prompt is {len(text)} "
                f"characters long: more than {context} tokens of this model's tokenizer can hold "
                f"({self.max_prompt_chars} characters). Shorten it.",
                param=param,
            )

    def encode_chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        template_kwargs: Mapping[str, Any] | None = None,
        special_tokens: bool = False,
    ) -> list[int]:
        """``special_tokens``: also what the tokenizer adds to a bare text (the template usually writes them)."""
        text = self.render_chat(messages, tools=tools, template_kwargs=template_kwargs)
        self.check_length(text, "messages")
        return self._tokenize(text, special_tokens=special_tokens)

    def render_chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        template_kwargs: Mapping[str, Any] | None = None,
    ) -> str:
        """The chat template's text for ``messages`` (media parts render as the model's placeholders)."""
        if not getattr(self._tokenizer, "chat_template", None):
            raise InvalidRequest(
                "This model has no chat template; use /v1/completions with a plain prompt.", param="messages"
            )
        kwargs = dict(template_kwargs or {})
        clashing = sorted(_RESERVED.intersection(kwargs))
        if clashing:
            raise InvalidRequest(
                f"chat_template_kwargs may not set {', '.join(clashing)}", param="chat_template_kwargs"
            )
        if not kwargs.get("continue_final_message"):
            kwargs.setdefault("add_generation_prompt", True)
        try:
            text = self._tokenizer.apply_chat_template(messages, tools=tools or None, tokenize=False, **kwargs)
        except TemplateError as exc:  # templates raise for conversations they reject
            raise InvalidRequest(f"The chat template rejected the messages: {exc}", param="messages") from exc
        except (ValueError, TypeError) as exc:  # inconsistent template options, e.g. continue + generation prompt
            raise InvalidRequest(f"Invalid chat template options: {exc}", param="chat_template_kwargs") from exc
        return str(text)

    def encode_text(self, text: str, *, special_tokens: bool = False) -> list[int]:
        """``special_tokens``: add what the tokenizer adds to a bare prompt (a BOS, for Llama-style models)."""
        self.check_length(text, "prompt")
        return self._tokenize(text, special_tokens=special_tokens)

    def _tokenize(self, text: str, *, special_tokens: bool) -> list[int]:
        return list(self._tokenizer(text, add_special_tokens=special_tokens)["input_ids"])

    def encode_fim(self, prefix: str, suffix: str) -> list[int]:
        """Fill-in-the-middle, prefix-suffix-middle order, with the tokenizer's own FIM tokens."""
        markers = self._fim_markers()
        if markers is None:
            raise InvalidRequest(
                "This model's tokenizer has no fill-in-the-middle tokens, so `suffix` cannot be honoured.",
                param="suffix",
            )
        begin, hole, end = markers
        return self.encode_text(f"{begin}{prefix}{hole}{suffix}{end}", special_tokens=True)

    def decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))

    def detokenize(self, ids: list[int]) -> str:
        """The text of ``ids`` with special tokens kept (the inverse of tokenizing); ids outside the
        tokenizer's vocabulary are a 400 naming ``tokens``."""
        size = len(self._tokenizer)
        outside = next((i for i, token in enumerate(ids) if not 0 <= token < size), None)
        if outside is not None:
            raise InvalidRequest(
                f"tokens[{outside}] = {ids[outside]} is not in the vocabulary (ids 0 to {size - 1}).", param="tokens"
            )
        return str(self._tokenizer.decode(ids, skip_special_tokens=False))

    def token_strings(self, ids: list[int]) -> list[str]:
        """Each id's token as the vocabulary spells it (byte-level pieces as they are, e.g. ``Ġthe``)."""
        return [str(token) for token in self._tokenizer.convert_ids_to_tokens(ids)]

    def _fim_markers(self) -> tuple[str, str, str] | None:
        vocab = self._tokenizer.get_vocab()
        for markers in _FIM_STYLES:
            if all(marker in vocab for marker in markers):
                return markers
        return None
