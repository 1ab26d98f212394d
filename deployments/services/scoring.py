"""Scoring: the builtin scoring functions over given rows or a dataset's rows; the llm-as-judge
function asks its judge model through the graph (at most `JUDGE_CONCURRENCY` requests at once)."""

from __future__ import annotations

import asyncio
from typing import Any

from deployments.services.datasets import DatasetService
from deployments.services.models import ModelService
from deployments.services.scoring_functions import BUILTIN, Judge, LLMAsJudgeParams, ScoringFn, ScoringParams, resolve, score
from providers.access import Identity
from providers.api.errors import NotFoundError
from providers.api.inference import ChatCompletionRequest

JUDGE_CONCURRENCY = 8
PAGE_ROWS = 1000


class ScoringService:
    def __init__(self, models: ModelService, datasets: DatasetService | None):
        self.models = models
        self.datasets = datasets

    def functions(self) -> list[ScoringFn]:
        return list(BUILTIN.values())

    def function(self, fn_id: str) -> ScoringFn:
        if fn_id not in BUILTIN:
            raise NotFoundError(f"Scoring function '{fn_id}' not found", param="scoring_fn_id")
        return BUILTIN[fn_id]

    async def checked(self, user: Identity | None, functions: dict[str, dict[str, Any] | None],
                      where: str) -> dict[str, ScoringParams]:
        """The functions' params; 400 for an unknown function, 404 for a judge model the caller cannot see."""
        resolved = resolve(functions, where)
        for fn_id, params in resolved.items():
            if isinstance(params, LLMAsJudgeParams):
                try:
                    await self.models.model_for(user, params.judge_model)
                except NotFoundError as exc:
                    raise NotFoundError(exc.message, param=f"{where}.{fn_id}.judge_model") from None
        return resolved

    async def score(self, user: Identity | None, rows: list[dict[str, Any]],
                    functions: dict[str, ScoringParams]) -> dict[str, Any]:
        results = {}
        for fn_id, params in functions.items():
            judge = self._judge(user, params.judge_model) if isinstance(params, LLMAsJudgeParams) else None
            results[fn_id] = await score(fn_id, params, rows, judge)
        return results

    async def score_batch(self, user: Identity | None, dataset_id: str,
                          functions: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
        if self.datasets is None:
            raise NotFoundError("no datasets: the run config needs a provider under providers.datasetio")
        resolved = await self.checked(user, functions, "scoring_functions")
        rows, start = [], 0
        while True:
            page = await self.datasets.iterrows(user, dataset_id, start, PAGE_ROWS)
            rows.extend(page["data"])
            start += len(page["data"])
            if not page["has_more"]:
                break
        return {"dataset_id": None, "results": await self.score(user, rows, resolved)}

    def _judge(self, user: Identity | None, model_id: str) -> Judge:
        gate = asyncio.Semaphore(JUDGE_CONCURRENCY)

        async def ask(prompt: str) -> str:
            async with gate:
                model = await self.models.model_for(user, model_id)
                request = ChatCompletionRequest(model=model_id, messages=[{"role": "user", "content": prompt}],
                                                temperature=0.0, max_tokens=64)
                reply = await self.models.client(model).chat_completion(request, model.provider_resource_id)
                return reply["choices"][0]["message"]["content"] or ""

        return ask
