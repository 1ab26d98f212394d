"""/v1alpha/eval: benchmarks, evaluation jobs, their status and results."""


from fastapi import APIRouter
from fastapi.responses import Response

from deployments.routes.dependencies import EvalDep, Limit, UserDep
from deployments.routes.replies import BenchmarkObject, Data, EvalJob, Evaluation, ListedEvalJob, Page, replies
from providers.api.eval import EvaluateRowsRequest, RegisterBenchmarkRequest, RunEvalRequest

router = APIRouter(prefix="/v1alpha/eval/benchmarks", tags=["Eval"])




@router.post("", **replies(BenchmarkObject))
async def register_benchmark(request: RegisterBenchmarkRequest, evals: EvalDep, user: UserDep):
    return (await evals.register(user, request)).public()


@router.get("", **replies(Data[BenchmarkObject]))
async def list_benchmarks(evals: EvalDep, user: UserDep):
    return {"data": [b.public() for b in await evals.benchmarks.list(user)]}


@router.get("/{benchmark_id}", **replies(BenchmarkObject))
async def get_benchmark(benchmark_id: str, evals: EvalDep, user: UserDep):
    return (await evals.benchmarks.get(user, benchmark_id)).public()


@router.delete("/{benchmark_id}", status_code=204)
async def unregister_benchmark(benchmark_id: str, evals: EvalDep, user: UserDep):
    await evals.unregister(user, benchmark_id)
    return Response(status_code=204)


@router.post("/{benchmark_id}/jobs", **replies(EvalJob))
async def run_eval(benchmark_id: str, request: RunEvalRequest, evals: EvalDep, user: UserDep):
    return await evals.run(user, benchmark_id, request.benchmark_config)


@router.get("/{benchmark_id}/jobs", **replies(Page[ListedEvalJob]))
async def list_jobs(benchmark_id: str, evals: EvalDep, user: UserDep, after: str | None = None, limit: Limit = 20):
    """The caller's evaluation jobs of the benchmark, newest first (not in Llama Stack's spec)."""
    return await evals.jobs_of(user, benchmark_id, after, limit)


@router.get("/{benchmark_id}/jobs/{job_id}", **replies(EvalJob))
async def job_status(benchmark_id: str, job_id: str, evals: EvalDep, user: UserDep):
    return await evals.status(user, benchmark_id, job_id)


@router.delete("/{benchmark_id}/jobs/{job_id}", status_code=204)
async def job_cancel(benchmark_id: str, job_id: str, evals: EvalDep, user: UserDep):
    await evals.cancel(user, benchmark_id, job_id)
    return Response(status_code=204)


@router.get("/{benchmark_id}/jobs/{job_id}/result", **replies(Evaluation))
async def job_result(benchmark_id: str, job_id: str, evals: EvalDep, user: UserDep):
    return await evals.result(user, benchmark_id, job_id)


@router.post("/{benchmark_id}/evaluations", **replies(Evaluation))
async def evaluate_rows(benchmark_id: str, request: EvaluateRowsRequest, evals: EvalDep, user: UserDep):
    return await evals.evaluate_rows(user, benchmark_id, request)
