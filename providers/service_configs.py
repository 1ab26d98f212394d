"""The run config's settings of the services (vector stores, responses, eval, batches): how their
Ray Data pipelines run and what they allow."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IngestionConfig(StrictModel):
    """The Ray Data pipeline that ingests files into vector stores (deployments/services/ingestion_pipeline.py):
    chunks per embedding call, tasks per stage, the CPUs each task reserves (they mostly wait on the
    embedding deployment), and how often replicas look for files a stopped replica left in progress."""

    embedding_batch_size: int = Field(default=64, ge=1, le=2048)
    concurrency: int = Field(default=2, ge=1)
    num_cpus: float = Field(default=0.1, ge=0)
    resume_check_period_s: float = Field(default=30.0, gt=0)


class ResponsesConfig(StrictModel):
    """Shields every response runs on its input and output, whatever shields the request adds; the MCP
    servers callers may name besides the tool groups' (deployments/services/mcp_servers.py)."""

    guardrails: list[str] = []
    mcp_servers: list[Annotated[str, Field(pattern=r"^https?://")]] = []
    any_mcp_server: bool = Field(default=False, description="callers may name other MCP servers on public addresses")


class VectorStoresConfig(StrictModel):
    ingestion: IngestionConfig = IngestionConfig()


class EvalConfig(StrictModel):
    """The Ray Data pipeline that generates an evaluation's answers (deployments/services/eval_generation.py): rows
    per task (sent to the model at once), tasks at a time, and the CPUs each task reserves (it waits
    on the inference deployment)."""

    batch_size: int = Field(default=8, ge=1, le=1024)
    concurrency: int = Field(default=2, ge=1)
    num_cpus: float = Field(default=0.1, ge=0)


class BatchesConfig(StrictModel):
    """The Ray Data pipeline that answers a batch's requests (deployments/services/batch_pipeline.py): requests
    per task (sent to the deployment at once), tasks at a time, the CPUs each task reserves (it waits on
    the deployment), the engine priority of its requests (higher runs later on engines that schedule
    by priority, so interactive traffic goes first), how long one request may take, and how often
    replicas look for batches a stopped replica left unfinished."""

    batch_size: int = Field(default=8, ge=1, le=1024)
    concurrency: int = Field(default=3, ge=1)
    num_cpus: float = Field(default=0.1, ge=0)
    priority: int = Field(default=10, ge=0)
    request_timeout_s: float = Field(default=600.0, gt=0)
    resume_check_period_s: float = Field(default=30.0, gt=0)
