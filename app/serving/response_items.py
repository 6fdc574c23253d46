"""Responses ``input`` items ↔ chat-template messages, and output items back into input items."""

from __future__ import annotations

import uuid
from typing import Any

from app.errors import InvalidRequest, UnsupportedParameter
from app.protocol.chat import ChatMessage, ContentPart
from app.protocol.response_objects import FunctionCallOutput, OutputItem, OutputMessage, ReasoningOutput
from app.protocol.responses import (
    FunctionCallItem,
    FunctionCallOutputItem,
    InputContentPart,
    InputItem,
    ItemReference,
    MessageItem,
    ReasoningItem,
    ReasoningText,
)
from app.protocol.tools import CalledFunction, ResponsesTool, ToolCall
from app.serving.chat_messages import ChatPrompt, is_media_part, to_template_messages, to_template_tools

_TEXT_PARTS = {"input_text", "output_text", "text", "summary_text", "reasoning_text"}


_ID_PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}


def input_items(value: str | list[InputItem]) -> list[InputItem]:
    """A bare string is one user message. Every item gets an id (kept when the client gave one), which
    ``input_items`` listings page by."""
    items = [MessageItem(role="user", content=value)] if isinstance(value, str) else list(value)
    return [item if item.id else _identified(item) for item in items]


def _identified(item: InputItem) -> InputItem:
    return item.model_copy(update={"id": f"{_ID_PREFIXES[item.type]}_{uuid.uuid4().hex}"})


def listed_item(item: InputItem) -> dict[str, Any]:
    """An item as ``input_items`` lists it: a message's text content as parts, as OpenAI returns it."""
    listed = item.model_dump(mode="json", exclude_none=True)
    if isinstance(item, MessageItem):
        if isinstance(item.content, str):
            kind = "output_text" if item.role == "assistant" else "input_text"
            listed["content"] = [{"type": kind, "text": item.content}]
        listed.setdefault("status", "completed")
    return listed


def _text(content: str | list[InputContentPart], param: str) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for j, part in enumerate(content):
        if part.type in _TEXT_PARTS and part.text is not None:
            texts.append(part.text)
        elif part.type == "refusal" and part.refusal is not None:
            texts.append(part.refusal)
        else:
            raise InvalidRequest(
                f"Content of type `{part.type}` is not supported here.",
                param=f"{param}[{j}]",
            )
    return "\n".join(texts)


def _content(content: str | list[InputContentPart], param: str) -> str | list[ContentPart]:
    """A message's content: text joined, or, with media parts, chat content parts (media parts as sent)."""
    if isinstance(content, str) or not any(is_media_part(part.type) for part in content):
        return _text(content, param)
    parts = []
    for j, part in enumerate(content):
        if is_media_part(part.type):
            parts.append(ContentPart.model_validate(part.model_dump(exclude_none=True)))
        elif part.type in _TEXT_PARTS and part.text is not None:
            parts.append(ContentPart(type="text", text=part.text))
        else:
            raise InvalidRequest(f"Content of type `{part.type}` is not supported.", param=f"{param}[{j}]")
    return parts


def _reasoning_text(item: ReasoningItem) -> str:
    parts: list[ReasoningText] = item.content or item.summary
    return "\n".join(part.text for part in parts)


def to_chat_messages(instructions: str | None, items: list[InputItem]) -> ChatPrompt:
    """The conversation as the chat template sees it: an assistant turn's reasoning, text and function
    calls become one assistant message (``reasoning_content``, ``content``, ``tool_calls``), and each
    ``function_call_output`` a ``tool`` message."""
    messages: list[ChatMessage] = []
    content_params: dict[int, str] = {}  # a media part's error names its input item
    if instructions:
        messages.append(ChatMessage(role="system", content=instructions))
    reasoning: str | None = None  # waits for the assistant message it belongs to
    call_names: dict[str, str] = {}

    def assistant_turn() -> ChatMessage:
        nonlocal reasoning
        last = messages[-1] if messages else None
        if last is not None and last.role == "assistant" and reasoning is None:
            return last
        message = ChatMessage(role="assistant", content="", reasoning_content=reasoning)
        reasoning = None
        messages.append(message)
        return message

    for i, item in enumerate(items):
        if isinstance(item, MessageItem):
            if item.role == "assistant":
                text = _text(item.content, f"input[{i}].content")
                turn = assistant_turn()
                turn.content = f"{turn.content}{text}" if turn.content else text
            else:
                content_params[len(messages)] = f"input[{i}].content"
                messages.append(ChatMessage(role=item.role, content=_content(item.content, f"input[{i}].content")))
        elif isinstance(item, FunctionCallItem):
            call_names[item.call_id] = item.name
            turn = assistant_turn()
            call = ToolCall(id=item.call_id, function=CalledFunction(name=item.name, arguments=item.arguments))
            turn.tool_calls = [*(turn.tool_calls or []), call]
        elif isinstance(item, FunctionCallOutputItem):
            output = _text(item.output, f"input[{i}].output")
            messages.append(
                ChatMessage(role="tool", content=output, tool_call_id=item.call_id, name=call_names.get(item.call_id))
            )
        elif isinstance(item, ReasoningItem):
            reasoning = f"{reasoning}\n{_reasoning_text(item)}" if reasoning else _reasoning_text(item)
        elif isinstance(item, ItemReference):
            raise UnsupportedParameter(
                "item_reference is not supported; send the item itself or use previous_response_id.",
                param=f"input[{i}]",
            )
    if reasoning is not None:  # reasoning with no answer after it still reaches the template
        messages.append(ChatMessage(role="assistant", content="", reasoning_content=reasoning))
    return to_template_messages(messages, content_params)


def chat_tools(tools: list[ResponsesTool] | None) -> list[dict[str, Any]] | None:
    """Responses' flat function tools → the nested form chat templates take."""
    if not tools:
        return None
    converted = []
    for i, tool in enumerate(tools):
        if tool.type != "function":
            raise UnsupportedParameter(f"Only function tools are supported, not `{tool.type}`.", param=f"tools[{i}]")
        if tool.function is not None:  # already in chat form
            converted.append({"type": "function", "function": tool.function.model_dump(exclude_none=True)})
            continue
        if tool.name is None:
            raise InvalidRequest("A function tool needs a name.", param=f"tools[{i}].name")
        function = tool.model_dump(include={"name", "description", "parameters"}, exclude_none=True)
        converted.append({"type": "function", "function": function})
    return to_template_tools(converted)


def as_input_item(item: OutputItem) -> InputItem:
    """An output item, as a follow-up request would send it back."""
    if isinstance(item, OutputMessage):
        parts = [InputContentPart(type="output_text", text=part.text) for part in item.content]
        return MessageItem(id=item.id, role="assistant", content=parts)
    if isinstance(item, ReasoningOutput):
        return ReasoningItem(
            type="reasoning", id=item.id, content=[ReasoningText(type=c.type, text=c.text) for c in item.content]
        )
    assert isinstance(item, FunctionCallOutput)
    return FunctionCallItem(
        type="function_call", id=item.id, call_id=item.call_id, name=item.name, arguments=item.arguments
    )
