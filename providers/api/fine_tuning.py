"""OpenAI fine-tuning jobs' wire types (`/v1/fine_tuning/jobs`), over the post-training jobs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from providers.api.base import Metadata, WireModel

FILE_ID = r"^file-[A-Za-z0-9]+$"
# The OpenAI status of each post-training status.
STATUSES = {"scheduled": "queued", "in_progress": "running", "completed": "succeeded", "failed": "failed",
            "cancelled": "cancelled"}


class Hyperparameters(WireModel):
    """"auto" (or nothing) takes the post-training provider's `job_defaults`."""

    batch_size: Literal["auto"] | Annotated[int, Field(ge=1, le=1024)] | None = None
    learning_rate_multiplier: Literal["auto"] | Annotated[float, Field(gt=0, le=1000)] | None = None
    n_epochs: Literal["auto"] | Annotated[int, Field(ge=1, le=100)] | None = None


class SupervisedMethod(WireModel):
    hyperparameters: Hyperparameters | None = None


class Method(WireModel):
    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: SupervisedMethod | None = None
    dpo: dict | None = None
    reinforcement: dict | None = None


class CreateFineTuningJobRequest(WireModel):
    model: str = Field(min_length=1, description="a base llm of an inline::vllm provider")
    training_file: str = Field(pattern=FILE_ID, description="a chat JSONL file uploaded with purpose fine-tune")
    validation_file: str | None = Field(default=None, pattern=FILE_ID)
    method: Method | None = None
    hyperparameters: Hyperparameters | None = None  # OpenAI's older place for them
    suffix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                               description="goes into the model's name, ft:<model>:<suffix>:<job id>")
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    metadata: Metadata | None = None
    integrations: list[dict] | None = Field(default=None, max_length=0, description="not supported")
