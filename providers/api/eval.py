"""Benchmarks, eval and scoring API wire types (Llama Stack's shapes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from providers.access.identity import Identity
from providers.api.base import WireModel
from providers.api.datasets import DATASET_ID


class SamplingStrategy(WireModel):
    type: Literal["greedy", "top_p", "top_k"] = "greedy"
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0)


class SamplingParams(WireModel):
    strategy: SamplingStrategy = SamplingStrategy()
    max_tokens: int | None = Field(default=256, ge=1)
    repetition_penalty: float | None = None
    stop: list[str] | None = None

    def chat_options(self) -> dict[str, Any]:
        """The chat completion options these stand for."""
        options: dict[str, Any] = {"max_tokens": self.max_tokens}
        if self.strategy.type == "greedy":
            options["temperature"] = 0.0
        else:
            options["temperature"] = self.strategy.temperature if self.strategy.temperature is not None else 1.0
            if self.strategy.top_p is not None:
                options["top_p"] = self.strategy.top_p
        if self.stop:
            options["stop"] = self.stop
        return options


class SystemMessage(WireModel):
    role: Literal["system"] = "system"
    content: str


class ModelCandidate(WireModel):
    type: Literal["model"] = "model"
    model: str = Field(min_length=1)
    sampling_params: SamplingParams = SamplingParams()
    system_message: SystemMessage | None = None


class BenchmarkConfig(WireModel):
    eval_candidate: ModelCandidate
    scoring_params: dict[str, dict[str, Any]] = {}
    num_examples: int | None = Field(default=None, ge=1)


class RunEvalRequest(WireModel):
    benchmark_config: BenchmarkConfig


MAX_INPUT_ROWS = 10_000  # rows one request scores or evaluates; more go through a dataset


class EvaluateRowsRequest(WireModel):
    input_rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_INPUT_ROWS)
    scoring_functions: list[str] = Field(min_length=1)
    benchmark_config: BenchmarkConfig


class RegisterBenchmarkRequest(WireModel):
    benchmark_id: str = Field(pattern=DATASET_ID)
    dataset_id: str = Field(min_length=1)
    scoring_functions: list[str] = Field(min_length=1)
    provider_benchmark_id: str | None = None
    provider_id: str | None = None
    metadata: dict[str, Any] | None = None


class Benchmark(BaseModel):
    identifier: str
    provider_id: str = "raystack"
    provider_resource_id: str | None = None
    type: Literal["benchmark"] = "benchmark"
    dataset_id: str
    scoring_functions: list[str]
    metadata: dict[str, Any] = {}
    owner: Identity | None = None

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"owner"})


class ScoreRequest(WireModel):
    input_rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_INPUT_ROWS)
    scoring_functions: dict[str, dict[str, Any] | None] = Field(min_length=1)


class ScoreBatchRequest(WireModel):
    dataset_id: str = Field(min_length=1)
    scoring_functions: dict[str, dict[str, Any] | None] = Field(min_length=1)
    save_results_dataset: bool = False
