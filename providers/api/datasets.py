"""DatasetIO and datasets API wire types (Llama Stack's shapes)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from providers.access.identity import Identity

DatasetPurpose = Literal["post-training/messages", "eval/question-answer", "eval/messages-answer"]
DATASET_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


# The columns each purpose needs in every row.
PURPOSE_COLUMNS: dict[str, tuple[str, ...]] = {
    "post-training/messages": ("messages",),
    "eval/question-answer": ("input_query", "expected_answer"),
    "eval/messages-answer": ("messages", "expected_answer"),
}
