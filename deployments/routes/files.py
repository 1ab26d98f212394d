"""POST/GET /v1/files, GET/DELETE /v1/files/{id}, GET /v1/files/{id}/content."""

from typing import Annotated, AsyncIterator, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from deployments.routes.dependencies import MAX_PAGE, FilesDep, Limit, UserDep
from deployments.routes.replies import Deleted, FileObject, Page, replies
from providers.api.errors import InvalidRequestError, PayloadTooLargeError
from providers.api.files import PURPOSES

router = APIRouter(prefix="/v1/files", tags=["Files"])

# Multipart framing around the file: a request this much over the limit cannot fit.
_MULTIPART_SLACK = 64 * 1024
# What one call to the files provider carries of an upload.
UPLOAD_PART_BYTES = 4 * 1024 * 1024




@router.post("", **replies(FileObject))
async def upload_file(request: Request, files: FilesDep, user: UserDep,
                      file: Annotated[UploadFile, File()], purpose: Annotated[str, Form()]):
    if purpose not in PURPOSES:
        raise InvalidRequestError(f"purpose must be one of {', '.join(PURPOSES)}", param="purpose")
    if int(request.headers.get("content-length") or 0) > files.max_bytes + _MULTIPART_SLACK:
        raise PayloadTooLargeError(f"file is larger than the {files.max_bytes} bytes allowed", param="file")
    return await files.upload(user, file.filename or "upload", purpose, _parts(file))


async def _parts(file: UploadFile) -> AsyncIterator[bytes]:
    while part := await file.read(UPLOAD_PART_BYTES):
        yield part


@router.get("", **replies(Page[FileObject]))
async def list_files(files: FilesDep, user: UserDep, after: str | None = None, limit: Limit = MAX_PAGE,
                     order: Literal["asc", "desc"] = "desc", purpose: str | None = None):
    return await files.records.list(user, after=after, limit=limit, order=order, purpose=purpose)


@router.get("/{file_id}", **replies(FileObject))
async def get_file(file_id: str, files: FilesDep, user: UserDep):
    return await files.records.get(user, file_id)


@router.get("/{file_id}/content", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def get_file_content(file_id: str, files: FilesDep, user: UserDep):
    return Response(await files.content(user, file_id), media_type="application/octet-stream")


@router.delete("/{file_id}", **replies(Deleted))
async def delete_file(file_id: str, files: FilesDep, user: UserDep):
    await files.delete(user, file_id)
    return {"id": file_id, "object": "file", "deleted": True}
