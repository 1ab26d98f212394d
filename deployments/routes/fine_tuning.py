"""/v1/fine_tuning/jobs: OpenAI's fine-tuning jobs, run as post-training jobs."""

from fastapi import APIRouter

from deployments.routes.dependencies import FineTuningDep, Limit, UserDep
from deployments.routes.replies import FineTuningCheckpoint, FineTuningEvent, FineTuningJob, Page, replies
from providers.api.fine_tuning import CreateFineTuningJobRequest

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["Fine tuning"])


@router.post("", **replies(FineTuningJob))
async def create_fine_tuning_job(request: CreateFineTuningJobRequest, fine_tuning: FineTuningDep, user: UserDep):
    return await fine_tuning.create(user, request)


@router.get("", **replies(Page[FineTuningJob]))
async def list_fine_tuning_jobs(fine_tuning: FineTuningDep, user: UserDep, after: str | None = None,
                                limit: Limit = 20):
    return await fine_tuning.list(user, after, limit)


@router.get("/{fine_tuning_job_id}", **replies(FineTuningJob))
async def retrieve_fine_tuning_job(fine_tuning_job_id: str, fine_tuning: FineTuningDep, user: UserDep):
    return await fine_tuning.retrieve(user, fine_tuning_job_id)


@router.post("/{fine_tuning_job_id}/cancel", **replies(FineTuningJob))
async def cancel_fine_tuning_job(fine_tuning_job_id: str, fine_tuning: FineTuningDep, user: UserDep):
    return await fine_tuning.cancel(user, fine_tuning_job_id)


@router.get("/{fine_tuning_job_id}/events", **replies(Page[FineTuningEvent]))
async def list_fine_tuning_events(fine_tuning_job_id: str, fine_tuning: FineTuningDep, user: UserDep,
                                  after: str | None = None, limit: Limit = 20):
    return await fine_tuning.events(user, fine_tuning_job_id, after, limit)


@router.get("/{fine_tuning_job_id}/checkpoints", **replies(Page[FineTuningCheckpoint]))
async def list_fine_tuning_checkpoints(fine_tuning_job_id: str, fine_tuning: FineTuningDep, user: UserDep,
                                       after: str | None = None, limit: Limit = 10):
    return await fine_tuning.checkpoints(user, fine_tuning_job_id, after, limit)
