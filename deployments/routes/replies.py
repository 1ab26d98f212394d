"""What the routes answer, for the OpenAPI document (`replies(...)` in a route's
decorator). The schemas describe; they do not filter or validate answers on the way out, which would
cost every request. tests/e2e/test_fuzz.py checks real answers against them. Objects allow fields
beyond those named, as OpenAI's and Llama Stack's do."""

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from providers.api.files import StoredPurpose
from providers.api.models import ModelType

Item = TypeVar("Item")
FileStatus = Literal["in_progress", "completed", "failed", "cancelled"]
JobStatus = Literal["scheduled", "in_progress", "completed", "failed", "cancelled"]


class Reply(BaseModel):
    model_config = ConfigDict(extra="allow")


class Deleted(Reply):
    id: str
    object: str
    deleted: bool


class Listing(Reply, Generic[Item]):
    object: Literal["list"]
    data: list[Item]


class Page(Listing[Item], Generic[Item]):
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None


class ModelObject(Reply):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    custom_metadata: dict[str, Any]
    model_type: ModelType


class FunctionCallOut(Reply):
    name: str
    arguments: str


class ToolCallOut(Reply):
    id: str
    type: Literal["function"]
    function: FunctionCallOut


class AssistantMessageOut(Reply):
    role: Literal["assistant"]
    content: str | None = None
    tool_calls: list[ToolCallOut] | None = None


class ChatChoice(Reply):
    index: int
    message: AssistantMessageOut
    finish_reason: str | None


class TokenUsage(Reply):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(Reply):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: TokenUsage | None = None


class StoredChatCompletion(ChatCompletion):
    input_messages: list[dict[str, Any]]


class ChatCompletionMessage(Reply):
    id: str
    role: str


class AnthropicUsage(Reply):
    input_tokens: int
    output_tokens: int


class AnthropicMessage(Reply):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[dict[str, Any]]
    stop_reason: Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"] | None
    stop_sequence: str | None
    usage: AnthropicUsage


class TokenCount(Reply):
    input_tokens: int


class TextChoice(Reply):
    index: int
    text: str
    finish_reason: str | None


class TextCompletion(Reply):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[TextChoice]
    usage: TokenUsage | None = None


class Embedding(Reply):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str


class EmbeddingUsage(Reply):
    prompt_tokens: int
    total_tokens: int


class Embeddings(Listing[Embedding]):
    model: str
    usage: EmbeddingUsage


class FileObject(Reply):
    id: str
    object: Literal["file"]
    bytes: int
    created_at: int
    expires_at: int | None = None
    filename: str
    purpose: StoredPurpose


class BatchRequestCounts(Reply):
    total: int
    completed: int
    failed: int


class Batch(Reply):
    id: str
    object: Literal["batch"]
    endpoint: str
    input_file_id: str
    completion_window: str
    status: Literal["validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling",
                    "cancelled"]
    created_at: int
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: dict[str, Any] | None = None
    request_counts: BatchRequestCounts | None = None
    metadata: dict[str, str] | None = None


class FileCounts(Reply):
    in_progress: int
    completed: int
    failed: int
    cancelled: int
    total: int


class VectorStore(Reply):
    id: str
    object: Literal["vector_store"]
    created_at: int
    name: str | None = None
    status: Literal["expired", "in_progress", "completed"]
    usage_bytes: int
    file_counts: FileCounts
    metadata: dict[str, Any]
    expires_at: int | None = None
    last_active_at: int | None = None


class VectorStoreFile(Reply):
    id: str
    object: Literal["vector_store.file"]
    created_at: int
    vector_store_id: str
    status: FileStatus
    usage_bytes: int
    last_error: dict[str, Any] | None = None
    attributes: dict[str, Any]


class FileBatch(Reply):
    id: str
    object: Literal["vector_store.file_batch"]
    created_at: int
    vector_store_id: str
    status: FileStatus
    file_counts: FileCounts


class TextContent(Reply):
    type: Literal["text"]
    text: str


class FileContentPage(Reply):
    object: Literal["vector_store.file_content.page"]
    file_id: str
    data: list[TextContent]
    has_more: bool


class SearchResult(Reply):
    file_id: str
    filename: str
    score: float
    attributes: dict[str, Any] | None = None
    content: list[TextContent]


class SearchResults(Reply):
    object: Literal["vector_store.search_results.page"]
    search_query: list[str]
    data: list[SearchResult]
    has_more: bool
    next_page: str | None = None


class Conversation(Reply):
    id: str
    object: Literal["conversation"]
    created_at: int
    metadata: dict[str, Any]


class ConversationItem(Reply):
    type: str


class ResponseObject(Reply):
    id: str
    object: Literal["response"]
    created_at: int
    model: str
    status: Literal["completed", "failed", "in_progress", "cancelled", "queued", "incomplete"]
    output: list[dict[str, Any]]


class Prompt(Reply):
    prompt_id: str
    version: int
    prompt: str | None
    variables: list[str]
    is_default: bool


class ModerationResult(Reply):
    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]


class Moderation(Reply):
    id: str
    model: str
    results: list[ModerationResult]


class Health(Reply):
    status: Literal["OK", "Error"]


class Version(Reply):
    version: str


class Data(Reply, Generic[Item]):
    """Llama Stack's listing: `{"data": [...]}`."""

    data: list[Item]


class Resource(Reply):
    identifier: str
    provider_id: str
    type: str


class DatasetObject(Resource):
    type: Literal["dataset"]
    purpose: str
    source: dict[str, Any]
    metadata: dict[str, Any]


class Rows(Reply):
    data: list[dict[str, Any]]
    next_start_index: int | None = None


class BenchmarkObject(Resource):
    type: Literal["benchmark"]
    dataset_id: str
    scoring_functions: list[str]
    metadata: dict[str, Any]


class ScoringFunction(Resource):
    type: Literal["scoring_function"]
    description: str
    params: dict[str, Any]


class ScoringResult(Reply):
    score_rows: list[dict[str, Any]]
    aggregated_results: dict[str, Any]


class Scores(Reply):
    results: dict[str, ScoringResult]


class BatchScores(Scores):
    dataset_id: str | None


class EvalJob(Reply):
    job_id: str
    status: JobStatus
    progress: dict[str, Any] | None = None
    error: str | None = None


class ListedEvalJob(EvalJob):
    id: str
    benchmark_id: str
    created_at: int
    completed_at: int | None = None


class Evaluation(Reply):
    generations: list[dict[str, Any]]
    scores: dict[str, ScoringResult]


class TrainingJob(Reply):
    job_uuid: str


class TrainingJobState(TrainingJob):
    status: JobStatus


class TrainingJobStatus(TrainingJobState):
    checkpoints: list[dict[str, Any]]


class TrainingArtifacts(TrainingJob):
    checkpoints: list[dict[str, Any]]


class FineTuningJob(Reply):
    id: str
    object: Literal["fine_tuning.job"]
    model: str
    created_at: int
    status: Literal["validating_files", "queued", "running", "succeeded", "failed", "cancelled"]
    fine_tuned_model: str | None
    finished_at: int | None
    error: dict[str, Any] | None
    hyperparameters: dict[str, Any]
    training_file: str | None
    validation_file: str | None
    seed: int | None
    trained_tokens: int | None
    metadata: dict[str, str] | None


class FineTuningEvent(Reply):
    id: str
    object: Literal["fine_tuning.job.event"]
    created_at: int
    level: Literal["info", "warn", "error"]
    message: str
    type: Literal["message", "metrics"]
    data: dict[str, Any]


class FineTuningCheckpoint(Reply):
    id: str
    object: Literal["fine_tuning.job.checkpoint"]
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    step_number: int | None
    metrics: dict[str, Any]


class ShieldVerdict(Reply):
    violation: dict[str, Any] | None


class ShieldObject(Resource):
    type: Literal["shield"]
    provider_resource_id: str


class ToolObject(Reply):
    name: str
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    toolgroup_id: str | None = None


class ToolGroupObject(Resource):
    type: Literal["tool_group"]


class ProviderInfo(Reply):
    api: str
    provider_id: str
    provider_type: str
    config: dict[str, Any]
    health: dict[str, Any]


class DeploymentInfo(Reply):
    name: str
    status: str
    message: str
    replicas: dict[str, int]
    provider: dict[str, Any] | None


class GraphStatus(Reply):
    application: str
    dashboard_url: str | None
    deployments: list[DeploymentInfo]


class RouteInfo(Reply):
    route: str
    method: str
    provider_types: list[str]


# A server-sent event: its `data` (a JSON text, or `[DONE]`) and, on the Responses stream, its `event` name.
SERVER_SENT_EVENT = {"type": "object", "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
                     "required": ["data"]}


def replies(model: type[BaseModel], *, streams: bool = False) -> dict[str, Any]:
    """`responses=` for a route answering `model` (and server-sent events when it `streams`)."""
    reply: dict[str, Any] = {"model": model}
    if streams:
        reply["content"] = {"text/event-stream": {"schema": SERVER_SENT_EVENT}}
    return {"responses": {200: reply}}
