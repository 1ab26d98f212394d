"""GET/POST /v1/models, GET/DELETE /v1/models/{model_id}: each caller sees the models it may read."""

from fastapi import APIRouter

from deployments.routes import GatewayDep, UserDep
from providers.api.models import RegisterModelRequest

router = APIRouter(prefix="/v1/models", tags=["Models"])


@router.get("")
async def list_models(gateway: GatewayDep, user: UserDep):
    return {"object": "list", "data": [m.to_openai() for m in await gateway.visible_models(user)]}


@router.post("")
async def register_model(request: RegisterModelRequest, gateway: GatewayDep,
                         user: UserDep):
    return (await gateway.register_model(user, request)).to_openai()


@router.get("/{model_id:path}")
async def get_model(model_id: str, gateway: GatewayDep, user: UserDep):
    return (await gateway.model_for(user, model_id, fresh=True)).to_openai()


@router.delete("/{model_id:path}")
async def unregister_model(model_id: str, gateway: GatewayDep, user: UserDep):
    await gateway.unregister_model(user, model_id)
    return {"id": model_id, "object": "model", "deleted": True}
