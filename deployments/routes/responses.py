"""/v1/responses: make, read, list and delete responses."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from deployments.routes.dependencies import AgentsDep, Limit, Order, ResponsesDep, UserDep
from deployments.routes.replies import ConversationItem, Deleted, Page, ResponseObject, replies
from providers.api.responses import CreateResponseRequest

router = APIRouter(prefix="/v1/responses", tags=["Responses"])







@router.post("", **replies(ResponseObject, streams=True))
async def create_response(request: CreateResponseRequest, agents: AgentsDep, user: UserDep):
    """The turn runs in the agents deployment."""
    result = await agents.create(user, request)
    if isinstance(result, dict):
        return result
    return StreamingResponse(result, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.get("", **replies(Page[ResponseObject]))
async def list_responses(responses: ResponsesDep, user: UserDep, after: str | None = None, limit: Limit = 20,
                         order: Order = "desc", model: str | None = None):
    return await responses.list(user, after=after, limit=limit, order=order, model=model)


@router.get("/{response_id}", **replies(ResponseObject))
async def get_response(response_id: str, responses: ResponsesDep, user: UserDep,
                       include: Annotated[list[str] | None, Query()] = None):
    return await responses.get(user, response_id, include)


@router.get("/{response_id}/input_items", **replies(Page[ConversationItem]))
async def list_input_items(response_id: str, responses: ResponsesDep, user: UserDep, after: str | None = None,
                           limit: Limit = 20, order: Order = "desc", include: Annotated[list[str] | None, Query()] = None):
    return await responses.input_items(user, response_id, after=after, limit=limit, order=order)


@router.delete("/{response_id}", **replies(Deleted))
async def delete_response(response_id: str, responses: ResponsesDep, user: UserDep):
    return await responses.delete(user, response_id)
