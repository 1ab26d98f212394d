"""DatasetIO and datasets API wire types (Llama Stack's shapes)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol, Union

from pydantic import BaseModel, Field

from providers.access.identity import Identity
from providers.api.base import WireModel

DatasetPurpose = Literal["post-training/messages", "eval/question-answer", "eval/messages-answer"]
DATASET_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class URIDataSource(WireModel):
    """A local path or `file://` URI, the id of an uploaded file, or `hf://<dataset id or path>`."""

    type: Literal["uri"] = "uri"
    uri: str = Field(min_length=1)


class RowsDataSource(WireModel):
    type: Literal["rows"] = "rows"
    rows: list[dict[str, Any]] = Field(min_length=1)


DataSource = Annotated[Union[URIDataSource, RowsDataSource], Field(discriminator="type")]


class RegisterDatasetRequest(WireModel):
    purpose: DatasetPurpose
    source: DataSource
    metadata: dict[str, Any] | None = None
    dataset_id: str | None = Field(default=None, pattern=DATASET_ID)


class AppendRowsRequest(WireModel):
    dataset_id: str | None = None  # the spec repeats the path's id in the body
    rows: list[dict[str, Any]] = Field(min_length=1)


class Dataset(BaseModel):
    identifier: str
    provider_id: str
    provider_resource_id: str | None = None
    type: Literal["dataset"] = "dataset"
    purpose: DatasetPurpose
    source: DataSource
    metadata: dict[str, Any] = {}
    owner: Identity | None = None

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"owner"})


# The columns each purpose needs in every row, by the names scoring, evaluation and training read.
PURPOSE_COLUMNS: dict[str, tuple[str, ...]] = {
    "post-training/messages": ("messages",),
    "eval/question-answer": ("input_query", "expected_answer"),
    "eval/messages-answer": ("messages", "expected_answer"),
}
# Llama Stack's documented names for them (`{"question": ..., "answer": ...}`), accepted in their place.
COLUMN_ALIASES: dict[str, str] = {"input_query": "question", "expected_answer": "answer"}


def column_value(row: dict[str, Any], column: str) -> Any:
    """The row's `column`, or its Llama Stack alias; None when neither holds a value."""
    value = row.get(column)
    if value in (None, "") and column in COLUMN_ALIASES:
        value = row.get(COLUMN_ALIASES[column])
    return None if value == "" else value


def missing_columns(purpose: str, columns: list[str]) -> list[str]:
    return [c for c in PURPOSE_COLUMNS[purpose] if c not in columns and COLUMN_ALIASES.get(c) not in columns]


def canonical_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row with `input_query` and `expected_answer` filled from their aliases; a messages row's
    `input_query` is its last user message (what a judge is shown)."""
    canonical = {**row, **{c: v for c in COLUMN_ALIASES if (v := column_value(row, c)) is not None}}
    if canonical.get("input_query") is None and isinstance(row.get("messages"), list):
        asked = [m.get("content") for m in row["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        if asked:
            canonical["input_query"] = asked[-1]
    return canonical


class DatasetIOProvider(Protocol):
    """Keeps dataset rows by id; the dataset's registration and owner live in the metadata store.
    Each import and append answers with the stored dataset's `num_rows` and `columns`."""

    async def import_rows(self, dataset_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]: ...

    async def import_uri(self, dataset_id: str, uri: str, metadata: dict[str, Any]) -> dict[str, Any]: ...

    async def import_file(self, dataset_id: str, filename: str, content: bytes) -> dict[str, Any]: ...

    async def append_rows(self, dataset_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]: ...

    async def iterrows(self, dataset_id: str, start_index: int, limit: int | None) -> dict[str, Any]: ...

    async def location(self, dataset_id: str) -> str:
        """Where the rows are, for a Ray Data reader on any node."""
        ...

    async def delete(self, dataset_id: str) -> None: ...

    async def shutdown(self) -> None: ...
