"""/v1/batches: OpenAI's Batches API."""

from fastapi import APIRouter

from deployments.routes.dependencies import BatchesDep, Limit, UserDep
from deployments.routes.replies import Batch, Page, replies
from providers.api.batches import CreateBatchRequest

router = APIRouter(prefix="/v1/batches", tags=["Batches"])


@router.post("", **replies(Batch))
async def create_batch(request: CreateBatchRequest, batches: BatchesDep, user: UserDep):
    return await batches.create(user, request)


@router.get("", **replies(Page[Batch]))
async def list_batches(batches: BatchesDep, user: UserDep, after: str | None = None, limit: Limit = 20):
    return await batches.list(user, after, limit)


@router.get("/{batch_id}", **replies(Batch))
async def retrieve_batch(batch_id: str, batches: BatchesDep, user: UserDep):
    return await batches.get(user, batch_id)


@router.post("/{batch_id}/cancel", **replies(Batch))
async def cancel_batch(batch_id: str, batches: BatchesDep, user: UserDep):
    return await batches.cancel(user, batch_id)
