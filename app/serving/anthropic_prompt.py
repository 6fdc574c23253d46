"""An Anthropic Messages request → the chat prompt the prepare path takes (``ChatInput``).

``system`` (a string or text blocks) becomes a system message. A user turn's ``tool_result`` blocks
become ``tool`` messages (in order, before the turn's other blocks, as Anthropic requires them first);
its text and image blocks one user message, to which the images of tool results are added (chat
templates take text in tool messages). An assistant turn's ``thinking``, ``text`` and ``tool_use``
blocks become one assistant message's ``reasoning_content``, ``content`` and ``tool_calls``; a last
assistant turn is continued (the template's ``continue_final_message``). Images become the chat path's
``image_url`` parts, so the media path fetches, checks and limits them as it does chat's.
"""

from __future__ import annotations

from typing import Any

from app.errors import InvalidRequest, UnsupportedParameter
from app.protocol.anthropic import (
    ImageBlock,
    MessageParam,
    PromptFields,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from app.protocol.chat import ChatMessage, ContentPart
from app.serving.chat_messages import to_template_messages
from app.serving.prepare import ChatInput, check_tool_choice


def _image_part(block: ImageBlock, param: str) -> ContentPart:
    source = block.source
    if source.type == "url":
        if not source.url:
            raise InvalidRequest("An image with a `url` source needs its `url`.", param=f"{param}.source.url")
        url = source.url
    else:
        if not source.data or not source.media_type:
            raise InvalidRequest(
                "An image with a `base64` source needs `media_type` and `data`.", param=f"{param}.source"
            )
        url = f"data:{source.media_type};base64,{source.data}"
    return ContentPart(type="image_url", image_url={"url": url})


def _tool_result(block: ToolResultBlock, param: str, images: list[ContentPart]) -> ChatMessage:
    """The result's text as a tool message; its images go to ``images``."""
    content = block.content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if isinstance(part, TextBlock):
                texts.append(part.text)
            else:
                images.append(_image_part(part, f"{param}.content[{j}]"))
        text = "\n".join(texts)
    else:
        text = content or ""
    if block.is_error:
        text = f"Error: {text}"
    return ChatMessage(role="tool", tool_call_id=block.tool_use_id, content=text)


def _user_turn(message: MessageParam, param: str) -> list[ChatMessage]:
    if isinstance(message.content, str):
        return [ChatMessage(role="user", content=message.content)]
    results: list[ChatMessage] = []
    parts: list[ContentPart] = []
    images: list[ContentPart] = []  # from tool results, after the turn's own parts
    for j, block in enumerate(message.content):
        block_param = f"{param}.content[{j}]"
        if isinstance(block, ToolResultBlock):
            results.append(_tool_result(block, block_param, images))
        elif isinstance(block, TextBlock):
            parts.append(ContentPart(type="text", text=block.text))
        elif isinstance(block, ImageBlock):
            parts.append(_image_part(block, block_param))
        else:
            raise InvalidRequest(f"A user turn cannot hold a `{block.type}` block.", param=block_param)
    parts += images
    return [*results, ChatMessage(role="user", content=parts)] if parts else results


def _assistant_turn(message: MessageParam, param: str) -> ChatMessage:
    if isinstance(message.content, str):
        return ChatMessage(role="assistant", content=message.content)
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(message.content):
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ThinkingBlock):
            thinking.append(block.thinking)
        elif isinstance(block, ToolUseBlock):
            call = {"id": block.id, "type": "function", "function": {"name": block.name, "arguments": block.input}}
            calls.append(call)
        elif not isinstance(block, RedactedThinkingBlock):  # opaque to any model but Claude: left out
            message_text = f"An assistant turn cannot hold a `{block.type}` block."
            raise InvalidRequest(message_text, param=f"{param}.content[{j}]")
    return ChatMessage(
        role="assistant",
        content="".join(texts),
        reasoning_content="\n".join(thinking) or None,
        tool_calls=calls or None,
    )


def to_chat_messages(req: PromptFields) -> tuple[list[ChatMessage], dict[int, str]]:
    """The chat messages, and what names each one's content in errors (by its position)."""
    messages: list[ChatMessage] = []
    content_params: dict[int, str] = {}
    if req.system:
        system = req.system if isinstance(req.system, str) else "\n\n".join(block.text for block in req.system)
        messages.append(ChatMessage(role="system", content=system))
    for i, message in enumerate(req.messages):
        param = f"messages[{i}]"
        turn = _user_turn(message, param) if message.role == "user" else [_assistant_turn(message, param)]
        content_params.update({len(messages) + j: f"{param}.content" for j in range(len(turn))})
        messages += turn
    return messages, content_params


def chat_tools(req: PromptFields) -> list[dict[str, Any]] | None:
    """Client tools in the chat form; Anthropic's server tools cannot run here and are refused."""
    tools = []
    for i, tool in enumerate(req.tools or []):
        if tool.type not in (None, "custom") or tool.input_schema is None:
            raise UnsupportedParameter(
                f"Tool `{tool.name}` is not a client tool with an `input_schema`; server tools "
                f"(type `{tool.type}`) are not supported.",
                param=f"tools[{i}]",
            )
        function = {"name": tool.name, "description": tool.description or "", "parameters": tool.input_schema}
        tools.append({"type": "function", "function": function})
    return tools or None


def _tool_choice(req: PromptFields) -> tuple[Any, bool]:
    """The chat form of ``tool_choice``, and whether several calls may come at once."""
    choice = req.tool_choice
    if choice is None:
        return None, True
    parallel = not choice.disable_parallel_tool_use
    if choice.type == "tool":
        names = {tool.name for tool in req.tools or []}
        if choice.name not in names:
            raise InvalidRequest(f"tool_choice names `{choice.name}`, which is not in tools.", param="tool_choice.name")
        return {"type": "function", "function": {"name": choice.name}}, parallel
    return {"auto": "auto", "any": "required", "none": "none"}[choice.type], parallel


def _template_kwargs(req: PromptFields) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    thinking = req.thinking
    if thinking is not None:
        if thinking.display == "omitted":
            raise UnsupportedParameter("thinking.display `omitted` is not supported.", param="thinking.display")
        if thinking.type != "adaptive":  # adaptive: the model's own default
            kwargs["enable_thinking"] = thinking.type == "enabled"
    if req.messages[-1].role == "assistant":  # a prefilled answer: the model goes on from it
        kwargs["continue_final_message"] = True
    return kwargs


def to_chat_input(req: PromptFields) -> ChatInput:
    tools = chat_tools(req)
    tool_choice, parallel = _tool_choice(req)
    check_tool_choice(tool_choice, tools)
    prompt = to_template_messages(*to_chat_messages(req))
    kwargs = _template_kwargs(req)
    return ChatInput(prompt, tools=tools, tool_choice=tool_choice, parallel_tool_calls=parallel, template_kwargs=kwargs)
