"""Vector IO: chunks with embeddings stored per vector store, searched by vector, keyword or both,
and the OpenAI attribute filters they are searched with."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol, Union

from pydantic import BaseModel, ConfigDict, Field

SearchMode = Literal["vector", "keyword", "hybrid"]
AttributeValue = Union[str, int, float, bool]


# The widest search breadth (HNSW ef) a config or a search may ask for: one search stays bounded.
MAX_SEARCH_EF = 4096


class ComparisonFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"]
    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    value: AttributeValue | list[AttributeValue]


class CompoundFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["and", "or"]
    filters: list[Annotated[Union[ComparisonFilter, "CompoundFilter"], Field(union_mode="left_to_right")]] = Field(min_length=1)


Filter = Annotated[Union[ComparisonFilter, CompoundFilter], Field(union_mode="left_to_right")]


class Chunk(BaseModel):
    """One piece of one file in one vector store."""

    id: str
    file_id: str
    text: str
    embedding: list[float]
    attributes: dict[str, AttributeValue] = {}


class SearchHit(BaseModel):
    id: str
    file_id: str
    text: str
    attributes: dict[str, Any]
    score: float


class VectorIOProvider(Protocol):
    """Chunks by store; a store is created with its embedding dimension."""

    async def create_store(self, store_id: str, dimension: int) -> None: ...

    async def delete_store(self, store_id: str) -> None: ...

    async def insert(self, store_id: str, chunks: list[Chunk]) -> None: ...

    async def flush(self, store_id: str) -> None:
        """Make what was inserted searchable through the index."""
        ...

    async def delete_file(self, store_id: str, file_id: str) -> None: ...

    async def file_chunks(self, store_id: str, file_id: str) -> list[str]: ...

    async def count(self, store_id: str) -> int: ...

    async def search(self, store_id: str, *, embedding: list[float] | None, text: str | None, mode: SearchMode,
                     limit: int, filters: ComparisonFilter | CompoundFilter | None,
                     ef: int | None = None) -> list[SearchHit]:
        """`ef`: the dense index's search breadth for this search; None: the provider's configured one."""

    async def shutdown(self) -> None: ...
