from pydantic import BaseModel, ConfigDict, Field

from providers.remote.milvus.config import MilvusIndexConfig


class InlineMilvusConfig(BaseModel):
    """milvus-lite keeps the collections in `db_path` (a directory) and lets one process open it."""

    model_config = ConfigDict(extra="forbid")

    db_path: str = Field(pattern=r"\.db$", description="a path ending in .db")
    index: MilvusIndexConfig = MilvusIndexConfig()
