"""A chat's state: the messages so far (a system prompt first, when there is one), the generation
settings sent with every request, and saving and loading both as a JSON file."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Request fields a setting may not replace: the command owns them.
_RESERVED = frozenset({"model", "messages", "stream", "stream_options"})
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


class SessionError(Exception):
    """A command that cannot be done (bad setting, unreadable file); reported in one line."""


def parse_value(text: str) -> Any:
    """A setting's value: JSON where it parses (numbers, true/false, null, lists, objects), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs (a null value removes the setting)."""
    settings: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise SessionError(f"`{item}` is not key=value (e.g. temperature=0.7).")
        if key in _RESERVED:
            raise SessionError(f"`{key}` is set by the chat itself and cannot be changed.")
        settings[key] = parse_value(value.strip())
    return settings


def is_assignment(text: str) -> bool:
    key, sep, _ = text.partition("=")
    return bool(sep) and bool(_KEY.match(key))


@dataclass(slots=True)
class ChatSession:
    model: str
    settings: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    last_usage: tuple[int, int] | None = None  # prompt and completion tokens of the last answer

    def apply(self, settings: dict[str, Any]) -> None:
        for key, value in settings.items():
            if value is None:
                self.settings.pop(key, None)
            else:
                self.settings[key] = value

    @property
    def system(self) -> str | None:
        if self.messages and self.messages[0].get("role") == "system":
            return str(self.messages[0].get("content") or "")
        return None

    def set_system(self, text: str | None) -> None:
        """Replaces the system prompt (None or empty removes it)."""
        if self.system is not None:
            self.messages.pop(0)
        if text:
            self.messages.insert(0, {"role": "system", "content": text})

    def clear(self) -> None:
        """A new conversation; the system prompt stays."""
        system = self.system
        self.messages.clear()
        self.set_system(system)
        self.last_usage = None

    def turns(self) -> int:
        return sum(1 for message in self.messages if message.get("role") == "user")

    def save(self, path: Path | None) -> Path:
        """Writes the model, settings and messages; by default under ``chat_history/<model>/``."""
        if path is None:
            folder = Path("chat_history") / re.sub(r"[^A-Za-z0-9._-]+", "_", self.model).strip("_")
            path = folder / f"chat_{time.strftime('%Y%m%d-%H%M%S')}.json"
        document = {"model": self.model, "settings": self.settings, "messages": self.messages}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        except OSError as exc:
            raise SessionError(f"cannot write {path}: {exc.strerror or exc}") from exc
        return path

    def load(self, path: Path) -> None:
        """Restores the messages and settings a ``save`` wrote (the model stays the one in use)."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SessionError(f"cannot read {path}: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise SessionError(f"{path} is not JSON: {exc}") from exc
        messages = document.get("messages") if isinstance(document, dict) else None
        settings = document.get("settings", {}) if isinstance(document, dict) else None
        if not isinstance(messages, list) or not all(_is_message(m) for m in messages):
            raise SessionError(f"{path} holds no chat: expected a `messages` list of {{role, content}} objects.")
        if not isinstance(settings, dict):
            raise SessionError(f"{path}: `settings` must be an object.")
        self.messages = messages
        self.settings = {key: value for key, value in settings.items() if key not in _RESERVED}
        self.last_usage = None


def _is_message(message: Any) -> bool:
    return isinstance(message, dict) and isinstance(message.get("role"), str) and "content" in message
