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
    return _event_stream(result)


def _event_stream(events) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.get("", **replies(Page[ResponseObject]))
async def list_responses(responses: ResponsesDep, user: UserDep, after: str | None = None, limit: Limit = 20,
                         order: Order = "desc", model: str | None = None):
    return await responses.list(user, after=after, limit=limit, order=order, model=model)


@router.get("/{response_id}", **replies(ResponseObject, streams=True))
async def get_response(response_id: str, responses: ResponsesDep, user: UserDep,
                       include: Annotated[list[str] | None, Query()] = None, stream: bool = False,
                       starting_after: Annotated[int | None, Query(ge=0)] = None):
    """The response; with `stream=true`, a background response's events again, after `starting_after`."""
    if stream:
        return _event_stream(await responses.events(user, response_id, starting_after))
    return await responses.get(user, response_id, include)


@router.post("/{response_id}/cancel", **replies(ResponseObject))
async def cancel_response(response_id: str, responses: ResponsesDep, user: UserDep):
    """Cancel a background response that is queued or in progress."""
    return await responses.cancel(user, response_id)


@router.get("/{response_id}/input_items", **replies(Page[ConversationItem]))
async def list_input_items(response_id: str, responses: ResponsesDep, user: UserDep, after: str | None = None,
                           limit: Limit = 20, order: Order = "desc", include: Annotated[list[str] | None, Query()] = None):
    return await responses.input_items(user, response_id, after=after, limit=limit, order=order)


@router.delete("/{response_id}", **replies(Deleted))
async def delete_response(response_id: str, responses: ResponsesDep, user: UserDep):
    return await responses.delete(user, response_id)
