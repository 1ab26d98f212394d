"""/v1/conversations: conversations and their items."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from deployments.routes.dependencies import ConversationsDep, Limit, UserDep
from deployments.routes.replies import Conversation, ConversationItem, Deleted, Page, replies
from providers.api.conversations import AddItemsRequest, CreateConversationRequest, UpdateConversationRequest

router = APIRouter(prefix="/v1/conversations", tags=["Conversations"])




@router.post("", **replies(Conversation))
async def create_conversation(request: CreateConversationRequest, conversations: ConversationsDep, user: UserDep):
    return await conversations.create(user, request)


@router.get("/{conversation_id}", **replies(Conversation))
async def get_conversation(conversation_id: str, conversations: ConversationsDep, user: UserDep):
    return await conversations.get(user, conversation_id)


@router.post("/{conversation_id}", **replies(Conversation))
async def update_conversation(conversation_id: str, request: UpdateConversationRequest, conversations: ConversationsDep,
                              user: UserDep):
    return await conversations.update(user, conversation_id, request)


@router.delete("/{conversation_id}", **replies(Deleted))
async def delete_conversation(conversation_id: str, conversations: ConversationsDep, user: UserDep):
    return await conversations.delete(user, conversation_id)


@router.post("/{conversation_id}/items", **replies(Page[ConversationItem]))
async def add_items(conversation_id: str, request: AddItemsRequest, conversations: ConversationsDep, user: UserDep):
    return await conversations.add_items(user, conversation_id, request)


@router.get("/{conversation_id}/items", **replies(Page[ConversationItem]))
async def list_items(conversation_id: str, conversations: ConversationsDep, user: UserDep, after: str | None = None,
                     limit: Limit = 20, order: Literal["asc", "desc"] = "desc",
                     include: Annotated[list[str] | None, Query()] = None):
    return await conversations.list_items(user, conversation_id, after=after, limit=limit, order=order)


@router.get("/{conversation_id}/items/{item_id}", **replies(ConversationItem))
async def get_item(conversation_id: str, item_id: str, conversations: ConversationsDep, user: UserDep):
    return await conversations.get_item(user, conversation_id, item_id)


@router.delete("/{conversation_id}/items/{item_id}", **replies(Conversation))
async def delete_item(conversation_id: str, item_id: str, conversations: ConversationsDep, user: UserDep):
    return await conversations.delete_item(user, conversation_id, item_id)
