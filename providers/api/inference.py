"""Inference API: OpenAI wire types for requests (validated here) and the provider contract.

Responses use the `openai` package's own pydantic types, so the wire shape is OpenAI's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, AsyncIterator, Literal, Protocol, Union

from pydantic import BaseModel, Field, model_validator

from providers.api.base import MAX_TOOLS, LenientWireModel

if TYPE_CHECKING:  # the openai package takes a second to import: replicas that only pass results on skip it
    from openai.types import Completion, CreateEmbeddingResponse
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]


# ---------------------------------------------------------------- messages


class TextPart(LenientWireModel):
    type: Literal["text"]
    text: str


class ImageURL(LenientWireModel):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(LenientWireModel):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[Union[TextPart, ImagePart], Field(discriminator="type")]


class FunctionCall(LenientWireModel):
    name: str
    arguments: str


class ToolCall(LenientWireModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(LenientWireModel):
    role: Literal["system", "developer"]
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(LenientWireModel):
    role: Literal["user"]
    content: str | list[ContentPart]
    name: str | None = None


class AssistantMessage(LenientWireModel):
    role: Literal["assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None


class ToolMessage(LenientWireModel):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: str


ChatMessage = Annotated[
    Union[SystemMessage, UserMessage, AssistantMessage, ToolMessage], Field(discriminator="role")
]


# ---------------------------------------------------------------- tools and formats


class FunctionDefinition(LenientWireModel):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ChatTool(LenientWireModel):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(LenientWireModel):
    name: str


class NamedToolChoice(LenientWireModel):
    type: Literal["function"]
    function: NamedFunction


class JSONSchemaSpec(LenientWireModel):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class TextFormat(LenientWireModel):
    type: Literal["text"]


class JSONObjectFormat(LenientWireModel):
    type: Literal["json_object"]


class JSONSchemaFormat(LenientWireModel):
    type: Literal["json_schema"]
    json_schema: JSONSchemaSpec


ResponseFormat = Annotated[
    Union[TextFormat, JSONObjectFormat, JSONSchemaFormat], Field(discriminator="type")
]


class StreamOptions(LenientWireModel):
    include_usage: bool | None = None


# ---------------------------------------------------------------- requests


class SamplingFields(LenientWireModel):
    model: Annotated[str, Field(min_length=1)]
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Probability | None = None
    user: str | None = None
    # vLLM's extension: an engine that schedules by priority runs lower values first. Interactive
    # requests run at 0 and batches above it; a caller may lower their own request, never raise it.
    priority: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _stream_options_need_stream(self):
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options: only allowed when stream is true")
        return self


class ChatCompletionRequest(SamplingFields):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    response_format: ResponseFormat | None = None
    tools: list[ChatTool] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None

    @model_validator(mode="after")
    def _consistent_options(self):
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs: requires logprobs to be true")
        if isinstance(self.tool_choice, NamedToolChoice):
            names = {tool.function.name for tool in self.tools or []}
            if self.tool_choice.function.name not in names:
                raise ValueError(
                    f"tool_choice: names function '{self.tool_choice.function.name}', "
                    "which is not among tools"
                )
        elif self.tool_choice == "required" and not self.tools:
            raise ValueError("tool_choice: 'required' needs at least one tool in tools")
        return self

    def output_token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


Prompt = Union[
    Annotated[str, Field(min_length=1)],
    Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)],
    Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)],
    Annotated[list[Annotated[list[int], Field(min_length=1)]], Field(min_length=1)],
]


class CompletionRequest(SamplingFields):
    prompt: Prompt
    echo: bool | None = None
    logprobs: Annotated[int, Field(ge=0, le=5)] | None = None
    suffix: str | None = None
    best_of: Annotated[int, Field(ge=1, le=20)] | None = None


EmbeddingInput = Union[
    Annotated[str, Field(min_length=1)],
    Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=2048)],
    Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)],
    Annotated[list[Annotated[list[int], Field(min_length=1)]], Field(min_length=1, max_length=2048)],
]


class EmbeddingRequest(LenientWireModel):
    model: Annotated[str, Field(min_length=1)]
    input: EmbeddingInput
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: str | None = None


# What a chat request tells a tokenizer (vLLM's /tokenize); the rest only steers generation.
TOKENIZE_FIELDS = ("messages", "tools", "add_generation_prompt", "continue_final_message")


# ---------------------------------------------------------------- provider contract


class ProviderModel(BaseModel):
    """A model a provider can serve, as it reports it."""

    provider_model_id: str
    model_type: Literal["llm", "embedding", "rerank"] = "llm"
    metadata: dict[str, Any] = {}


ChatResult = Union["ChatCompletion", AsyncIterator["ChatCompletionChunk | dict"]]
CompletionResult = Union["Completion", AsyncIterator["Completion | dict"]]


class InferenceProvider(Protocol):
    """What an inference provider implements. `request.model` is the id the client used (echo it
    in responses); `provider_model_id` is the provider's own name for the model. Results are
    OpenAI-shaped pydantic models or plain dicts; streaming requests return an async iterator
    of chunks. A provider implements the methods its models need (an embedding provider has no
    chat_completion); `check_alive`, when present, raises once the provider cannot recover."""

    async def list_models(self) -> list[ProviderModel]:
        """Models this provider serves; an empty list means it accepts any registered id."""
        ...

    async def chat_completion(self, request: ChatCompletionRequest, provider_model_id: str) -> ChatResult: ...

    async def completion(self, request: CompletionRequest, provider_model_id: str) -> CompletionResult: ...

    async def count_tokens(self, request: ChatCompletionRequest, provider_model_id: str) -> int:
        """The tokens the request's messages and tools make as the model's prompt."""
        ...

    async def weights_dir(self, provider_model_id: str) -> str | None:
        """The local HF folder of a base model's weights, for engines that hold one (inline::vllm)."""
        ...

    async def embeddings(self, request: EmbeddingRequest, provider_model_id: str) -> CreateEmbeddingResponse | dict: ...

    async def health(self) -> dict[str, Any]: ...

    async def shutdown(self) -> None: ...


class ChatModel(Protocol):
    """A chat model of the graph as a provider that depends on one sees it (the builder resolves
    the model id of the provider's config to the inference deployment that serves it)."""

    async def chat_completion(self, request: ChatCompletionRequest) -> dict[str, Any]: ...
