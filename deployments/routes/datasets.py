"""/v1beta/datasets and /v1beta/datasetio: registered datasets and their rows."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from deployments.routes.dependencies import DatasetsDep, UserDep
from deployments.routes.replies import Data, DatasetObject, Rows, replies
from providers.api.datasets import AppendRowsRequest, RegisterDatasetRequest
from providers.api.errors import InvalidRequestError

router = APIRouter(prefix="/v1beta", tags=["Datasets"])




@router.post("/datasets", **replies(DatasetObject))
async def register_dataset(request: RegisterDatasetRequest, datasets: DatasetsDep, user: UserDep):
    return (await datasets.register(user, request)).public()


@router.get("/datasets", **replies(Data[DatasetObject]))
async def list_datasets(datasets: DatasetsDep, user: UserDep):
    return {"data": [d.public() for d in await datasets.list(user)]}


@router.get("/datasets/{dataset_id}", **replies(DatasetObject))
async def get_dataset(dataset_id: str, datasets: DatasetsDep, user: UserDep):
    return (await datasets.get(user, dataset_id)).public()


@router.delete("/datasets/{dataset_id}", status_code=204)
async def delete_dataset(dataset_id: str, datasets: DatasetsDep, user: UserDep):
    await datasets.delete(user, dataset_id)
    return Response(status_code=204)


@router.get("/datasetio/iterrows/{dataset_id}", **replies(Rows))
async def iterrows(dataset_id: str, datasets: DatasetsDep, user: UserDep,
                   start_index: Annotated[int | None, Query(ge=0)] = None,
                   limit: Annotated[int | None, Query(ge=1)] = None):
    return await datasets.iterrows(user, dataset_id, start_index or 0, limit)


@router.post("/datasetio/append-rows/{dataset_id}", status_code=204)
async def append_rows(dataset_id: str, request: AppendRowsRequest, datasets: DatasetsDep, user: UserDep):
    if request.dataset_id not in (None, dataset_id):
        raise InvalidRequestError(f"dataset_id: the body names '{request.dataset_id}', the path '{dataset_id}'",
                                  param="dataset_id")
    await datasets.append_rows(user, dataset_id, request.rows)
    return Response(status_code=204)
