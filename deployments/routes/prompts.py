"""/v1/prompts: versioned prompt templates."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from deployments.routes.dependencies import PromptsDep, UserDep
from deployments.routes.replies import Listing, Prompt, replies
from providers.api.prompts import CreatePromptRequest, SetDefaultVersionRequest, UpdatePromptRequest

router = APIRouter(prefix="/v1/prompts", tags=["Prompts"])




@router.post("", **replies(Prompt))
async def create_prompt(request: CreatePromptRequest, prompts: PromptsDep, user: UserDep):
    return await prompts.create(user, request)


@router.get("", **replies(Listing[Prompt]))
async def list_prompts(prompts: PromptsDep, user: UserDep):
    return await prompts.list(user)


@router.get("/{prompt_id}", **replies(Prompt))
async def get_prompt(prompt_id: str, prompts: PromptsDep, user: UserDep, version: Annotated[int | None, Query(ge=1)] = None):
    return await prompts.get(user, prompt_id, version)


@router.put("/{prompt_id}", **replies(Prompt))
@router.post("/{prompt_id}", **replies(Prompt))
async def update_prompt(prompt_id: str, request: UpdatePromptRequest, prompts: PromptsDep, user: UserDep):
    return await prompts.update(user, prompt_id, request)


@router.delete("/{prompt_id}", status_code=204)
async def delete_prompt(prompt_id: str, prompts: PromptsDep, user: UserDep):
    await prompts.delete(user, prompt_id)
    return Response(status_code=204)


@router.put("/{prompt_id}/set-default-version", **replies(Prompt))
async def set_default_version(prompt_id: str, request: SetDefaultVersionRequest, prompts: PromptsDep, user: UserDep):
    return await prompts.set_default(user, prompt_id, request)


@router.get("/{prompt_id}/versions", **replies(Listing[Prompt]))
async def list_prompt_versions(prompt_id: str, prompts: PromptsDep, user: UserDep):
    return await prompts.versions_of(user, prompt_id)
