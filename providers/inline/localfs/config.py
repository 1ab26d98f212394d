from pydantic import BaseModel, ConfigDict, Field


class LocalFSConfig(BaseModel):
    """Files under `storage_dir`. One replica owns the directory, so on a cluster it must be a
    shared filesystem for the replica to move between nodes."""

    model_config = ConfigDict(extra="forbid")

    storage_dir: str
    max_file_size_bytes: int = Field(default=100 * 1024 * 1024, gt=0, description="larger uploads get a 413")
