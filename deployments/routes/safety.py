"""/v1/shields, /v1/moderations and /v1/safety/run-shield."""

from typing import Annotated

from fastapi import APIRouter, Depends

from deployments.routes import GatewayDep, UserDep
from deployments.services.safety import SafetyService
from providers.api.errors import NotFoundError
from providers.api.safety import ModerationRequest, RunShieldRequest

router = APIRouter(prefix="/v1", tags=["Safety"])


async def safety_of(gateway: GatewayDep, user: UserDep) -> SafetyService:
    """Shields are open to every authenticated caller."""
    if gateway.safety is None:
        raise NotFoundError("no safety: the run config needs 'safety' under apis and a provider under providers.safety")
    return gateway.safety


SafetyDep = Annotated[SafetyService, Depends(safety_of)]


@router.get("/shields")
async def list_shields(safety: SafetyDep):
    return {"data": list(safety.shields.values())}


@router.get("/shields/{identifier}")
async def get_shield(identifier: str, safety: SafetyDep):
    return safety.shield(identifier, "identifier")


@router.post("/moderations")
async def create_moderation(request: ModerationRequest, safety: SafetyDep):
    return await safety.moderations(request)


@router.post("/safety/run-shield")
async def run_shield(request: RunShieldRequest, safety: SafetyDep):
    return await safety.run_shield(request)
