"""/v1/vector_stores: stores, their files, and search."""


from fastapi import APIRouter

from deployments.routes.dependencies import Limit, Order, StoresDep, UserDep
from deployments.routes.replies import (
    Deleted,
    FileBatch,
    FileContentPage,
    FileStatus,
    Page,
    SearchResults,
    VectorStore,
    VectorStoreFile,
    replies,
)
from providers.api.vector_stores import (
    AttachFileRequest,
    CreateFileBatchRequest,
    CreateVectorStoreRequest,
    SearchRequest,
    UpdateVectorStoreRequest,
)

router = APIRouter(prefix="/v1/vector_stores", tags=["Vector stores"])





@router.post("", **replies(VectorStore))
async def create_vector_store(request: CreateVectorStoreRequest, stores: StoresDep, user: UserDep):
    return await stores.create(user, request)


@router.get("", **replies(Page[VectorStore]))
async def list_vector_stores(stores: StoresDep, user: UserDep, after: str | None = None, limit: Limit = 20, order: Order = "desc"):
    return await stores.list(user, after=after, limit=limit, order=order)


@router.get("/{vector_store_id}", **replies(VectorStore))
async def get_vector_store(vector_store_id: str, stores: StoresDep, user: UserDep):
    return await stores.get(user, vector_store_id)


@router.post("/{vector_store_id}", **replies(VectorStore))
async def update_vector_store(vector_store_id: str, request: UpdateVectorStoreRequest, stores: StoresDep, user: UserDep):
    return await stores.update(user, vector_store_id, request)


@router.delete("/{vector_store_id}", **replies(Deleted))
async def delete_vector_store(vector_store_id: str, stores: StoresDep, user: UserDep):
    await stores.delete(user, vector_store_id)
    return {"id": vector_store_id, "object": "vector_store.deleted", "deleted": True}


@router.post("/{vector_store_id}/files", **replies(VectorStoreFile))
async def attach_file(vector_store_id: str, request: AttachFileRequest, stores: StoresDep, user: UserDep):
    return await stores.attach(user, vector_store_id, request)


@router.get("/{vector_store_id}/files", **replies(Page[VectorStoreFile]))
async def list_vector_store_files(vector_store_id: str, stores: StoresDep, user: UserDep, after: str | None = None,
                                  limit: Limit = 20, order: Order = "desc", filter: FileStatus | None = None):
    return await stores.list_files(user, vector_store_id, after=after, status=filter, limit=limit, order=order)


@router.get("/{vector_store_id}/files/{file_id}", **replies(VectorStoreFile))
async def get_vector_store_file(vector_store_id: str, file_id: str, stores: StoresDep, user: UserDep):
    return await stores.get_file(user, vector_store_id, file_id)


@router.get("/{vector_store_id}/files/{file_id}/content", **replies(FileContentPage))
async def get_vector_store_file_content(vector_store_id: str, file_id: str, stores: StoresDep, user: UserDep):
    return await stores.file_content(user, vector_store_id, file_id)


@router.delete("/{vector_store_id}/files/{file_id}", **replies(Deleted))
async def detach_file(vector_store_id: str, file_id: str, stores: StoresDep, user: UserDep):
    await stores.detach(user, vector_store_id, file_id)
    return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}


@router.post("/{vector_store_id}/file_batches", **replies(FileBatch))
async def create_file_batch(vector_store_id: str, request: CreateFileBatchRequest, stores: StoresDep, user: UserDep):
    return await stores.create_batch(user, vector_store_id, request)


@router.get("/{vector_store_id}/file_batches/{batch_id}", **replies(FileBatch))
async def get_file_batch(vector_store_id: str, batch_id: str, stores: StoresDep, user: UserDep):
    return await stores.batch_view(await stores.get_batch(user, vector_store_id, batch_id))


@router.post("/{vector_store_id}/file_batches/{batch_id}/cancel", **replies(FileBatch))
async def cancel_file_batch(vector_store_id: str, batch_id: str, stores: StoresDep, user: UserDep):
    return await stores.cancel_batch(user, vector_store_id, batch_id)


@router.get("/{vector_store_id}/file_batches/{batch_id}/files", **replies(Page[VectorStoreFile]))
async def list_file_batch_files(vector_store_id: str, batch_id: str, stores: StoresDep, user: UserDep,
                                after: str | None = None, limit: Limit = 20, order: Order = "desc",
                                filter: FileStatus | None = None):
    return await stores.list_batch_files(user, vector_store_id, batch_id, after=after, status=filter, limit=limit, order=order)


@router.post("/{vector_store_id}/search", **replies(SearchResults))
async def search_vector_store(vector_store_id: str, request: SearchRequest, stores: StoresDep, user: UserDep):
    return await stores.search(user, vector_store_id, request)
