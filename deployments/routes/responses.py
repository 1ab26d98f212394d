"""/v1/responses: make, read, list and delete responses."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from deployments.agents import AgentsClient
from deployments.services.responses import ResponseService
from deployments.routes import GatewayDep, Limit, UserDep, service_of
from providers.api.responses import CreateResponseRequest

router = APIRouter(prefix="/v1/responses", tags=["Responses"])

Order = Literal["asc", "desc"]


ResponsesDep = Annotated[ResponseService, Depends(service_of("responses", "no responses: the run config needs 'responses' under apis and a 'responses' store"))]


async def agents_of(gateway: GatewayDep, responses: ResponsesDep) -> AgentsClient:
    """Where responses are served, the run config has an agents deployment to make them."""
    return gateway.agents


AgentsDep = Annotated[AgentsClient, Depends(agents_of)]


@router.post("")
async def create_response(request: CreateResponseRequest, agents: AgentsDep, user: UserDep):
    """The turn runs in the agents deployment."""
    result = await agents.create(user, request)
    if isinstance(result, dict):
        return result
    return StreamingResponse(result, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.get("")
async def list_responses(responses: ResponsesDep, user: UserDep, after: str | None = None, limit: Limit = 20,
                         order: Order = "desc", model: str | None = None):
    return await responses.list(user, after=after, limit=limit, order=order, model=model)


@router.get("/{response_id}")
async def get_response(response_id: str, responses: ResponsesDep, user: UserDep,
                       include: Annotated[list[str] | None, Query()] = None):
    return await responses.get(user, response_id, include)


@router.get("/{response_id}/input_items")
async def list_input_items(response_id: str, responses: ResponsesDep, user: UserDep, after: str | None = None,
                           limit: Limit = 20, order: Order = "desc", include: Annotated[list[str] | None, Query()] = None):
    return await responses.input_items(user, response_id, after=after, limit=limit, order=order)


@router.delete("/{response_id}")
async def delete_response(response_id: str, responses: ResponsesDep, user: UserDep):
    return await responses.delete(user, response_id)
