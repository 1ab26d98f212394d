from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class MilvusIndexConfig(BaseModel):
    """The dense index of every collection. On 384-d vectors, HNSW with these values measured
    recall@10 1.00 on 100k clustered vectors (like real embeddings) and, on uniformly random ones
    (ANN's worst case), 0.97 at 10k but 0.41 at 100k; raise `hnsw_ef` or use FLAT (exact) there.
    `python -m bench.vector_io` measures your own sizes."""

    model_config = ConfigDict(extra="forbid")

    index_type: Literal["HNSW", "FLAT", "IVF_FLAT"] = "HNSW"
    hnsw_m: int = Field(default=32, ge=4, le=64)
    hnsw_ef_construction: int = Field(default=256, ge=8, le=1024)
    hnsw_ef: int = Field(default=512, ge=1, le=4096, description="search breadth; at least the result count")
    ivf_nlist: int = Field(default=128, ge=1)
    ivf_nprobe: int = Field(default=64, ge=1)


class InlineMilvusConfig(BaseModel):
    """milvus-lite keeps the collections in `db_path` (a directory) and lets one process open it."""

    model_config = ConfigDict(extra="forbid")

    db_path: str = Field(pattern=r"\.db$", description="a path ending in .db")
    index: MilvusIndexConfig = MilvusIndexConfig()


class RemoteMilvusConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str = Field(description="e.g. http://milvus.internal:19530")
    token: str = ""
    db_name: str = "default"
    index: MilvusIndexConfig = MilvusIndexConfig()
