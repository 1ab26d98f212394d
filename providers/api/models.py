"""Models API: registered model resources (Llama Stack shape) and their OpenAI listing."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from providers.access.identity import Identity

ModelType = Literal["llm", "embedding", "rerank"]


class Model(BaseModel):
    """A model in the routing table: the id clients use and the provider that serves it."""

    identifier: str
    provider_id: str
    provider_resource_id: str
    model_type: ModelType = "llm"
    metadata: dict[str, Any] = {}
    type: Literal["model"] = "model"
    created: int = 0
    owner: Identity | None = None  # who registered it; None for models from the run config

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI model object, carrying Llama Stack's fields too so both SDKs read it."""
        return {
            "id": self.identifier,
            "object": "model",
            "created": self.created,
            "owned_by": self.provider_id,
            "custom_metadata": {
                "model_type": self.model_type,
                "provider_id": self.provider_id,
                "provider_resource_id": self.provider_resource_id,
                **self.metadata,
            },
            **self.model_dump(exclude={"created"}),
        }


class RegisterModelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: Annotated[str, Field(min_length=1, max_length=256)]
    provider_id: str | None = None
    provider_model_id: str | None = None
    model_type: ModelType | None = None
    metadata: dict[str, Any] | None = None
    model_validation: bool | None = None
