"""Anthropic's Messages API: the request bodies of `POST /v1/messages` and `/v1/messages/count_tokens`.

Content blocks tolerate fields they do not name: clients send a reply's blocks back as they got them
(`citations`, `cache_control`). The conversation rules Anthropic enforces are checked here, so a bad
history is a 400 naming its message before any model sees it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, model_validator

from providers.api.base import MAX_TOOLS, LenientWireModel


class TextBlock(LenientWireModel):
    type: Literal["text"]
    text: str


class Base64Source(LenientWireModel):
    type: Literal["base64"]
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: Annotated[str, Field(min_length=1)]


class URLSource(LenientWireModel):
    type: Literal["url"]
    url: Annotated[str, Field(min_length=1)]


class ImageBlock(LenientWireModel):
    type: Literal["image"]
    source: Annotated[Union[Base64Source, URLSource], Field(discriminator="type")]


class ToolUseBlock(LenientWireModel):
    type: Literal["tool_use"]
    id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    input: dict[str, Any]


class ToolResultBlock(LenientWireModel):
    type: Literal["tool_result"]
    tool_use_id: Annotated[str, Field(min_length=1)]
    content: str | list[TextBlock] | None = None
    is_error: bool | None = None


ContentBlock = Annotated[Union[TextBlock, ImageBlock, ToolUseBlock, ToolResultBlock], Field(discriminator="type")]


class Message(LenientWireModel):
    role: Literal["user", "assistant"]
    content: str | Annotated[list[ContentBlock], Field(min_length=1)]

    def blocks(self) -> list[TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock]:
        return [TextBlock(type="text", text=self.content)] if isinstance(self.content, str) else self.content


class Tool(LenientWireModel):
    """A client tool; Anthropic's server tools (`web_search_20250305`, ...) are not offered."""

    type: Literal["custom"] | None = None
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    description: str | None = None
    input_schema: dict[str, Any]

    @model_validator(mode="after")
    def _takes_an_object(self):
        if self.input_schema.get("type") != "object":
            raise ValueError("input_schema.type: a tool's input is a JSON object, so its schema's type must be 'object'")
        return self


class AutoChoice(LenientWireModel):
    type: Literal["auto"]
    disable_parallel_tool_use: bool | None = None


class AnyChoice(LenientWireModel):
    type: Literal["any"]
    disable_parallel_tool_use: bool | None = None


class NamedChoice(LenientWireModel):
    type: Literal["tool"]
    name: Annotated[str, Field(min_length=1)]
    disable_parallel_tool_use: bool | None = None


class NoneChoice(LenientWireModel):
    type: Literal["none"]


ToolChoice = Annotated[Union[AutoChoice, AnyChoice, NamedChoice, NoneChoice], Field(discriminator="type")]


class RequestMetadata(LenientWireModel):
    user_id: Annotated[str, Field(max_length=256)] | None = None


class CountTokensRequest(LenientWireModel):
    model: Annotated[str, Field(min_length=1)]
    messages: Annotated[list[Message], Field(min_length=1)]
    system: str | list[TextBlock] | None = None
    tools: list[Tool] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: ToolChoice | None = None

    @model_validator(mode="after")
    def _a_valid_conversation(self):
        check_conversation(self.messages)
        if isinstance(self.tool_choice, NamedChoice) and self.tool_choice.name not in {t.name for t in self.tools or []}:
            raise ValueError(f"tool_choice.name: names tool '{self.tool_choice.name}', which is not among tools")
        if isinstance(self.tool_choice, AnyChoice) and not self.tools:
            raise ValueError("tool_choice: 'any' needs at least one tool in tools")
        return self


class OutputFormat(LenientWireModel):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(LenientWireModel):
    """`format` constrains the answer to a JSON schema; `effort` steers reasoning models and is ignored."""

    effort: str | None = None
    format: OutputFormat | None = None


class MessagesRequest(CountTokensRequest):
    max_tokens: Annotated[int, Field(ge=1)]
    stop_sequences: Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=16)] | None = None
    stream: bool | None = None
    temperature: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    top_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    top_k: Annotated[int, Field(ge=1)] | None = None
    metadata: RequestMetadata | None = None
    output_config: OutputConfig | None = None


def check_conversation(messages: list[Message]) -> None:
    """Anthropic's rules for a history: it opens with the user; tool calls come from the assistant,
    and each tool result answers a call of the assistant turn just before it."""
    if messages[0].role != "user":
        raise ValueError("messages.0.role: the first message must use the 'user' role")
    calls: set[str] = set()
    for i, message in enumerate(messages):
        blocks = message.blocks()
        for j, block in enumerate(blocks):
            where = f"messages.{i}.content.{j}"
            if isinstance(block, ToolUseBlock) and message.role != "assistant":
                raise ValueError(f"{where}: tool_use blocks belong in assistant messages")
            if isinstance(block, ToolResultBlock):
                if message.role != "user":
                    raise ValueError(f"{where}: tool_result blocks belong in user messages")
                if block.tool_use_id not in calls:
                    raise ValueError(f"{where}.tool_use_id: '{block.tool_use_id}' answers no tool_use block "
                                     "of the assistant message just before it")
        calls = {b.id for b in blocks if isinstance(b, ToolUseBlock)}
