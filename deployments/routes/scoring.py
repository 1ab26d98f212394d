"""/v1/scoring-functions and /v1/scoring (also under /v1alpha): scoring given rows or a dataset."""


from fastapi import APIRouter

from deployments.routes.dependencies import ScoringDep, UserDep
from deployments.routes.replies import BatchScores, Data, Scores, ScoringFunction, replies
from deployments.services.scoring_functions import check_scored_rows
from providers.api.eval import ScoreBatchRequest, ScoreRequest


def scoring_router(prefix: str) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=["Scoring"])

    @router.get("/scoring-functions", **replies(Data[ScoringFunction]))
    async def list_scoring_functions(scoring: ScoringDep, user: UserDep):
        return {"data": [fn.model_dump() for fn in scoring.functions()]}

    @router.get("/scoring-functions/{scoring_fn_id:path}", **replies(ScoringFunction))
    async def get_scoring_function(scoring_fn_id: str, scoring: ScoringDep, user: UserDep):
        return scoring.function(scoring_fn_id).model_dump()

    @router.post("/scoring/score", **replies(Scores))
    async def score(request: ScoreRequest, scoring: ScoringDep, user: UserDep):
        functions = await scoring.checked(user, request.scoring_functions, "scoring_functions")
        check_scored_rows(functions, request.input_rows, "input_rows")
        return {"results": await scoring.score(user, request.input_rows, functions)}

    @router.post("/scoring/score-batch", **replies(BatchScores))
    async def score_batch(request: ScoreBatchRequest, scoring: ScoringDep, user: UserDep):
        return await scoring.score_batch(user, request.dataset_id, request.scoring_functions)

    return router


routers = [scoring_router("/v1"), scoring_router("/v1alpha")]
