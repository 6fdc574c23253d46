"""Chat messages → the messages a chat template takes, with the media they refer to kept apart.

Chat completions and responses (whose items become chat messages first) both end here. Media content
parts accepted (OpenAI's, plus the ``audio_url``/``video_url`` extensions):
``{"type": "image_url", "image_url": {"url"}}``, ``{"type": "input_image", "image_url": "..."}``,
``{"type": "input_audio", "input_audio": {"data": base64, "format"}}``, ``{"type": "audio_url",
"audio_url": {"url"}}`` and ``{"type": "video_url", "video_url": {"url", "num_frames", "fps"}}``.
In the template messages such a part is only ``{"type": "image" | "audio" | "video"}``; what it refers
to travels beside them in ``ChatPrompt.media``, in prompt order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from app.errors import InvalidRequest, UnsupportedParameter
from app.protocol.chat import ChatMessage, ContentPart
from app.serving.media import Kind, MediaRef

_KINDS: dict[str, Kind] = {
    "image_url": "image",
    "input_image": "image",
    "image": "image",
    "input_audio": "audio",
    "audio_url": "audio",
    "video_url": "video",
}


@dataclass(frozen=True, slots=True)
class ChatPrompt:
    """A conversation ready for the chat template."""

    messages: list[dict[str, Any]]
    media: list[MediaRef] = field(default_factory=list)


def is_media_part(part_type: str) -> bool:
    return part_type in _KINDS


def _url_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("url"), str):
        return value["url"]
    return None


def _positive(value: Any, name: str, param: str) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InvalidRequest(f"{name} must be a positive number.", param=f"{param}.{name}")
    return value


def media_ref(part: Mapping[str, Any], param: str) -> MediaRef | None:
    """The media a content part refers to, or None when the part is not a media part."""
    part_type = str(part.get("type"))
    kind = _KINDS.get(part_type)
    if kind is None:
        return None
    if part_type == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, Mapping) or not isinstance(audio.get("data"), str):
            raise InvalidRequest("input_audio needs `data` (base64 audio).", param=f"{param}.input_audio.data")
        fmt = audio.get("format")
        return MediaRef(kind, part_type, param, data=audio["data"], format=fmt if isinstance(fmt, str) else None)
    if part_type == "input_image" and part.get("file_id") and not part.get("image_url"):
        raise InvalidRequest("input_image by file_id is not supported; send image_url.", param=f"{param}.file_id")
    value = part.get(part_type if part_type != "input_image" else "image_url")
    url = _url_of(value)
    if not url:
        raise InvalidRequest(f"Content of type `{part_type}` needs a URL.", param=param)
    options = value if isinstance(value, Mapping) else {}
    num_frames = _positive(options.get("num_frames"), "num_frames", f"{param}.{part_type}")
    fps = _positive(options.get("fps"), "fps", f"{param}.{part_type}")
    return MediaRef(kind, part_type, param, url=url, num_frames=num_frames, fps=fps)


def _content(parts: list[ContentPart], param: str, media: list[MediaRef]) -> str | list[dict[str, str]]:
    """Text parts joined into one string; with media parts, the parts in the form chat templates take
    (``{"type": "text", "text"}``, ``{"type": "image" | "audio" | "video"}``), each ref added to ``media``."""
    template_parts: list[dict[str, str]] = []
    for j, part in enumerate(parts):
        if part.type == "text" and part.text is not None:
            template_parts.append({"type": "text", "text": part.text})
            continue
        ref = media_ref(part.model_dump(exclude_none=True), f"{param}[{j}]")
        if ref is None:
            raise InvalidRequest(f"Content of type `{part.type}` is not supported.", param=f"{param}[{j}]")
        template_parts.append({"type": ref.kind})
        media.append(ref)
    if all(part["type"] == "text" for part in template_parts):
        return "\n".join(part["text"] for part in template_parts)
    return template_parts


def _tool_calls_for_template(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI sends arguments as a JSON string; chat templates expect an object."""
    converted = []
    for call in calls:
        function = dict(call["function"])
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            with suppress(ValueError):  # not JSON: hand the template the string as sent
                function["arguments"] = json.loads(arguments)
        converted.append({**call, "function": function})
    return converted


def to_template_messages(
    messages: Sequence[ChatMessage], content_params: Mapping[int, str] | None = None
) -> ChatPrompt:
    """``content_params``: what names a message's content in errors, by position, where it is not
    ``messages[i].content`` (responses' messages come from ``input`` items)."""
    rendered = []
    media: list[MediaRef] = []
    for index, message in enumerate(messages):
        item = message.model_dump(exclude_none=True)
        item["role"] = "system" if message.role == "developer" else message.role
        content = message.content
        if isinstance(content, list):
            param = (content_params or {}).get(index, f"messages[{index}].content")
            content = _content(content, param, media)
        item["content"] = content or ""
        if message.tool_calls:
            item["tool_calls"] = _tool_calls_for_template(item["tool_calls"])
        rendered.append(item)
    return ChatPrompt(rendered, media)


_FUNCTION_KEYS = ("name", "description", "parameters")


def to_template_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Chat-form function tools as the chat template is given them: each function's name, description and
    parameters. API options beside them (``strict``) are not what the model is told, so a template that
    writes tools out whole (``tool | tojson``) renders the same prompt whatever the client sets."""
    if not tools:
        return None
    described = []
    for i, tool in enumerate(tools):
        if tool.get("type", "function") != "function":
            raise UnsupportedParameter(
                f"Only function tools are supported, not `{tool.get('type')}`.", param=f"tools[{i}].type"
            )
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise InvalidRequest("A function tool needs a `function` with a `name`.", param=f"tools[{i}].function")
        kept = {key: function[key] for key in _FUNCTION_KEYS if function.get(key) is not None}
        described.append({"type": "function", "function": kept})
    return described
