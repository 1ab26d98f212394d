"""/v1/shields, /v1/moderations and /v1/safety/run-shield."""


from fastapi import APIRouter

from deployments.routes.dependencies import SafetyDep
from deployments.routes.replies import Data, Moderation, ShieldObject, ShieldVerdict, replies
from providers.api.safety import ModerationRequest, RunShieldRequest

router = APIRouter(prefix="/v1", tags=["Safety"])




@router.get("/shields", **replies(Data[ShieldObject]))
async def list_shields(safety: SafetyDep):
    return {"data": list(safety.shields.values())}


@router.get("/shields/{identifier}", **replies(ShieldObject))
async def get_shield(identifier: str, safety: SafetyDep):
    return safety.shield(identifier, "identifier")


@router.post("/moderations", **replies(Moderation))
async def create_moderation(request: ModerationRequest, safety: SafetyDep):
    return await safety.moderations(request)


@router.post("/safety/run-shield", **replies(ShieldVerdict))
async def run_shield(request: RunShieldRequest, safety: SafetyDep):
    return await safety.run_shield(request)
