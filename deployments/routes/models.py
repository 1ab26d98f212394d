"""GET/POST /v1/models, GET/DELETE /v1/models/{model_id}: each caller sees the models it may read."""

from fastapi import APIRouter

from deployments.routes.dependencies import ModelsDep, UserDep
from deployments.routes.replies import Deleted, Listing, ModelObject, replies
from providers.api.models import RegisterModelRequest

router = APIRouter(prefix="/v1/models", tags=["Models"])


@router.get("", **replies(Listing[ModelObject]))
async def list_models(models: ModelsDep, user: UserDep):
    return {"object": "list", "data": [m.to_openai() for m in await models.visible(user)]}


@router.post("", **replies(ModelObject))
async def register_model(request: RegisterModelRequest, models: ModelsDep,
                         user: UserDep):
    return (await models.register(user, request)).to_openai()


@router.get("/{model_id:path}", **replies(ModelObject))
async def get_model(model_id: str, models: ModelsDep, user: UserDep):
    return (await models.model_for(user, model_id, fresh=True)).to_openai()


@router.delete("/{model_id:path}", **replies(Deleted))
async def unregister_model(model_id: str, models: ModelsDep, user: UserDep):
    await models.unregister(user, model_id)
    return {"id": model_id, "object": "model", "deleted": True}
