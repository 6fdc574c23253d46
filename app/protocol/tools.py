"""Function tools on the wire: definitions, a forced choice, and past calls (chat and responses forms).

Arguments arrive as JSON text inside the JSON body, so the body parser's nesting limit does not reach
them; ``JsonArguments`` bounds their nesting itself, before anything parses them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_JSON_DEPTH = 64  # deeper tool-call arguments are refused (JSON Schema and the templates recurse)
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """How deep ``text``'s arrays and objects nest (strings skipped); malformed text is measured as is."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        depth = depth + 1 if match.group() in "[{" else max(0, depth - 1)
        deepest = max(deepest, depth)
    return deepest


def _bounded_depth(text: str) -> str:
    if json_depth(text) > MAX_JSON_DEPTH:
        raise ValueError(f"the arguments nest deeper than {MAX_JSON_DEPTH} levels")
    return text


JsonArguments = Annotated[str, AfterValidator(_bounded_depth)]
ToolName = Annotated[str, Field(min_length=1, max_length=256)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class FunctionDefinition(_Part):
    name: ToolName
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(_Part):
    """A chat tool: ``{"type": "function", "function": {...}}``."""

    type: Literal["function"]
    function: FunctionDefinition


class ResponsesTool(_Part):
    """A Responses tool: flat (``{"type": "function", "name": ...}``), or in the chat form. Tool types
    other than ``function`` pass validation and are refused by serving with their own message."""

    type: str
    name: ToolName | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    function: FunctionDefinition | None = None


class FunctionName(_Part):
    name: ToolName


class NamedToolChoice(_Part):
    """A forced tool: ``{"type": "function", "function": {"name": ...}}`` or the flat ``{"type":
    "function", "name": ...}``; other types (hosted tools) are refused by serving."""

    type: str
    name: ToolName | None = None
    function: FunctionName | None = None


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class CalledFunction(_Part):
    name: ToolName
    arguments: JsonArguments | dict[str, Any] = "{}"


class ToolCall(_Part):
    """A past call in an assistant message."""

    id: str | None = None
    type: Literal["function"] = "function"
    function: CalledFunction
