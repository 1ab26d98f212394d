"""/v1alpha/post-training: supervised fine-tuning jobs, their status, artifacts and cancellation."""

from typing import Annotated

from fastapi import APIRouter, Query

from deployments.routes.dependencies import PostTrainingDep, UserDep
from deployments.routes.replies import Data, TrainingArtifacts, TrainingJob, TrainingJobState, TrainingJobStatus, replies
from providers.api.post_training import CancelTrainingJobRequest, SupervisedFineTuneRequest

router = APIRouter(prefix="/v1alpha/post-training", tags=["Post training"])


JobUUID = Annotated[str, Query(min_length=1)]


@router.post("/supervised-fine-tune", **replies(TrainingJob))
async def supervised_fine_tune(request: SupervisedFineTuneRequest, post_training: PostTrainingDep, user: UserDep):
    return await post_training.supervised_fine_tune(user, request)


@router.get("/jobs", **replies(Data[TrainingJobState]))
async def list_jobs(post_training: PostTrainingDep, user: UserDep):
    return await post_training.list(user)


@router.get("/job/status", **replies(TrainingJobStatus))
async def job_status(job_uuid: JobUUID, post_training: PostTrainingDep, user: UserDep):
    return await post_training.status(user, job_uuid)


@router.get("/job/artifacts", **replies(TrainingArtifacts))
async def job_artifacts(job_uuid: JobUUID, post_training: PostTrainingDep, user: UserDep):
    return await post_training.artifacts(user, job_uuid)


@router.post("/job/cancel")
async def cancel_job(request: CancelTrainingJobRequest, post_training: PostTrainingDep, user: UserDep):
    await post_training.cancel(user, request.job_uuid)
    return None
