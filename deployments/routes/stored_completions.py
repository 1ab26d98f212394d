"""GET /v1/chat/completions[/{id}[/messages]], DELETE /v1/chat/completions/{id}: the inference store."""


from fastapi import APIRouter

from deployments.routes.dependencies import Limit, Order, StoreDep, UserDep
from deployments.routes.replies import ChatCompletionMessage, Deleted, Page, StoredChatCompletion, replies
from deployments.services.pages import page_after

router = APIRouter(prefix="/v1/chat/completions", tags=["Inference"])





@router.get("", **replies(Page[StoredChatCompletion]))
async def list_chat_completions(store: StoreDep, user: UserDep, after: str | None = None, limit: Limit = 20,
                                model: str | None = None, order: Order = "asc"):
    return await store.list(user, after=after, limit=limit, model=model, order=order)


@router.get("/{completion_id}", **replies(StoredChatCompletion))
async def get_chat_completion(completion_id: str, store: StoreDep, user: UserDep):
    return await store.get(user, completion_id)


@router.get("/{completion_id}/messages", **replies(Page[ChatCompletionMessage]))
async def list_chat_completion_messages(completion_id: str, store: StoreDep, user: UserDep, after: str | None = None,
                                        limit: Limit = 20, order: Order = "asc"):
    """The input messages, each with the id `<completion id>-<position>` (OpenAI's shape)."""
    messages = [{"id": f"{completion_id}-{i}", **m} for i, m in enumerate((await store.get(user, completion_id))["input_messages"])]
    if order == "desc":
        messages.reverse()
    return page_after(messages, after, limit, f"no message '{after}' in chat completion '{completion_id}'")


@router.delete("/{completion_id}", **replies(Deleted))
async def delete_chat_completion(completion_id: str, store: StoreDep,
                                 user: UserDep):
    await store.delete(user, completion_id)
    return {"id": completion_id, "object": "chat.completion.deleted", "deleted": True}
