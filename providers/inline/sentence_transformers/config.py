from pydantic import BaseModel, ConfigDict, Field


class EmbeddingModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider_model_id: str = Field(description="the name this provider serves the model under")
    path: str | None = Field(default=None, description="local folder; default: the packaged all-MiniLM-L6-v2")
    matryoshka: bool = Field(default=False, description="whether truncating to `dimensions` is meaningful")


class SentenceTransformersConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[EmbeddingModelSpec] = [EmbeddingModelSpec(provider_model_id="all-MiniLM-L6-v2")]
    num_threads: int = Field(default=1, ge=1, description="torch threads per replica")
    batch_size: int = Field(default=32, ge=1)
