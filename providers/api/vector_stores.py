"""Vector stores API wire types (OpenAI's shapes, with Llama Stack's embedding model choice)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, model_validator

from providers.api.base import WireModel
from providers.api.vector_io import MAX_SEARCH_EF, AttributeValue, Filter, SearchMode


class StaticChunking(WireModel):
    max_chunk_size_tokens: int = Field(default=800, ge=100, le=4096)
    chunk_overlap_tokens: int = Field(default=400, ge=0)

    @model_validator(mode="after")
    def _overlap_at_most_half(self) -> "StaticChunking":
        if self.chunk_overlap_tokens > self.max_chunk_size_tokens // 2:
            raise ValueError("chunk_overlap_tokens: must not exceed half of max_chunk_size_tokens")
        return self


class StaticChunkingStrategy(WireModel):
    type: Literal["static"]
    static: StaticChunking


class AutoChunkingStrategy(WireModel):
    type: Literal["auto"]


ChunkingStrategy = Annotated[Union[AutoChunkingStrategy, StaticChunkingStrategy], Field(discriminator="type")]


class ExpiresAfter(WireModel):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


Metadata = Annotated[dict[str, Annotated[str, Field(max_length=512)]], Field(max_length=16)]
Attributes = Annotated[dict[str, AttributeValue], Field(max_length=16)]


class CreateVectorStoreRequest(WireModel):
    name: str | None = None
    file_ids: list[str] = []
    expires_after: ExpiresAfter | None = None
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata | None = None
    embedding_model: str | None = None  # Llama Stack: which embedding model; the only or first one by default
    provider_id: str | None = None      # Llama Stack: which vector IO provider; the only one by default


class UpdateVectorStoreRequest(WireModel):
    name: str | None = None
    expires_after: ExpiresAfter | None = None
    metadata: Metadata | None = None


class AttachFileRequest(WireModel):
    file_id: str
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None


class CreateFileBatchRequest(WireModel):
    file_ids: list[str] = Field(min_length=1, max_length=500)
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None


class RankingOptions(WireModel):
    ranker: str | None = None
    score_threshold: float = Field(default=0.0, ge=0.0, le=1.0)
    ef: int | None = Field(default=None, ge=1, le=MAX_SEARCH_EF, description=(
        "raystack: the HNSW search breadth of this search (at least max_num_results is used); wider finds more "
        "of the true nearest neighbours and takes longer. Default: the vector_io provider's index.hnsw_ef"))


class SearchRequest(WireModel):
    query: Union[Annotated[str, Field(min_length=1)], Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]]
    max_num_results: int = Field(default=10, ge=1, le=50)
    filters: Filter | None = None
    ranking_options: RankingOptions | None = None
    rewrite_query: bool = False
    search_mode: SearchMode = "vector"

    def text(self) -> str:
        return self.query if isinstance(self.query, str) else " ".join(self.query)


def search_result(file_id: str, filename: str, score: float, attributes: dict[str, Any], text: str) -> dict[str, Any]:
    return {"file_id": file_id, "filename": filename, "score": score, "attributes": attributes,
            "content": [{"type": "text", "text": text}]}
