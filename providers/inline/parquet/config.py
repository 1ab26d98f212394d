from pydantic import BaseModel, ConfigDict, Field


class ParquetDatasetsConfig(BaseModel):
    """Dataset rows as Parquet under `storage_dir` (a shared filesystem on a cluster: training and
    evaluation tasks read it from other nodes). Local paths and `file://` URIs may only name files
    under `allowed_paths`, so a caller cannot read the server's other files."""

    model_config = ConfigDict(extra="forbid")

    storage_dir: str
    allowed_paths: list[str] = Field(default_factory=list, description="folders local dataset URIs may point into")
    num_cpus: float = Field(default=0.1, ge=0, description="CPUs each Ray Data import task reserves")
    max_page_rows: int = Field(default=1000, ge=1, description="the most rows one iterrows call returns")
