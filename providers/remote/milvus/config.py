from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from providers.api.vector_io import MAX_SEARCH_EF


class MilvusIndexConfig(BaseModel):
    """The dense index of every collection. On 100k x 384 vectors with HNSW M=32/efConstruction=256,
    recall@10 on clustered vectors, like real embeddings, measured 0.977 / 0.999 / 1.000 at search ef
    16 / 32 / 64 and above, hence the default 128; on uniformly random vectors (ANN's worst case) 0.92 /
    0.98 / 1.00 at ef 512 / 1024 / 2048. A search may ask for its own (`ranking_options.ef`).
    `python -m bench.vector_io` measures your own sizes."""

    model_config = ConfigDict(extra="forbid")

    index_type: Literal["HNSW", "FLAT", "IVF_FLAT"] = "HNSW"
    hnsw_m: int = Field(default=32, ge=4, le=64)
    hnsw_ef_construction: int = Field(default=256, ge=8, le=1024)
    hnsw_ef: int = Field(default=128, ge=1, le=MAX_SEARCH_EF, description="search breadth; at least the result count")
    ivf_nlist: int = Field(default=128, ge=1)
    ivf_nprobe: int = Field(default=64, ge=1)


class RemoteMilvusConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str = Field(description="e.g. http://milvus.internal:19530")
    token: str | None = None
    db_name: str = "default"
    index: MilvusIndexConfig = MilvusIndexConfig()
