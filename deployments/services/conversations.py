"""Conversations: records and their items in the `conversations` store. Items belong to their
conversation: whoever may read it may read its items, whoever may update it may add and delete them."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from providers.access import Identity
from providers.api.conversations import AddItemsRequest, CreateConversationRequest, UpdateConversationRequest, normalized_item
from providers.api.errors import NotFoundError, PermissionDeniedError
from providers.storage.group_commit import GroupCommit
from providers.storage.owned_records import OwnedRecords

# A turn reads at most this many of its conversation's latest items (a model's context holds far fewer).
HISTORY_ITEMS = 1000


class ConversationService:
    def __init__(self, conversations: OwnedRecords, items: OwnedRecords):
        self.conversations = conversations
        self.items = items
        self.item_writes = GroupCommit(items.insert)  # the items of concurrent turns share transactions

    async def create(self, user: Identity | None, request: CreateConversationRequest) -> dict[str, Any]:
        conversation_id = f"conv_{uuid.uuid4().hex}"
        if not self.conversations.policy.allows(user, "create", "conversation", conversation_id, user):
            raise PermissionDeniedError("not allowed to create conversations")
        items = [normalized_item(item, f"items.{i}") for i, item in enumerate(request.items or [])]
        record = {"id": conversation_id, "object": "conversation", "created_at": int(time.time()),
                  "metadata": request.metadata or {}}
        await self.conversations.insert([self.conversations.row(record, user)])
        await self._store_items(conversation_id, items)
        return record

    async def get(self, user: Identity | None, conversation_id: str) -> dict[str, Any]:
        return await self.conversations.get(user, conversation_id)

    async def update(self, user: Identity | None, conversation_id: str, request: UpdateConversationRequest) -> dict[str, Any]:
        return await self.conversations.update(user, conversation_id, {"metadata": request.metadata})

    async def delete(self, user: Identity | None, conversation_id: str) -> dict[str, Any]:
        await self.conversations.delete(user, conversation_id)
        await self.items.delete_where(conversation_id=conversation_id)
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    async def add_items(self, user: Identity | None, conversation_id: str, request: AddItemsRequest) -> dict[str, Any]:
        items = [normalized_item(item, f"items.{i}") for i, item in enumerate(request.items)]
        await self.conversations.authorize(user, conversation_id, "update")
        return await self.append(conversation_id, items)

    async def append(self, conversation_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        """Store items at the end of a conversation the caller was already allowed to update."""
        await self._store_items(conversation_id, items)
        return {"object": "list", "data": items, "has_more": False,
                "first_id": items[0]["id"] if items else None, "last_id": items[-1]["id"] if items else None}

    async def _store_items(self, conversation_id: str, items: list[dict[str, Any]]) -> None:
        rows = [self.items.row(item, None, row_id=f"{conversation_id}/{item['id']}", conversation_id=conversation_id)
                for item in items]
        for before, row in zip(rows, rows[1:]):  # one call's items keep their order, however fast
            row["created_us"] = max(row["created_us"], before["created_us"] + 1)
        if rows:
            await self.item_writes.insert(rows)

    async def list_items(self, user: Identity | None, conversation_id: str, *, after: str | None, limit: int,
                         order: Literal["asc", "desc"]) -> dict[str, Any]:
        await self.conversations.get(user, conversation_id)
        return await self.items.list(None, after=f"{conversation_id}/{after}" if after else None, limit=limit,
                                     order=order, conversation_id=conversation_id)

    async def history(self, user: Identity | None, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's latest HISTORY_ITEMS items, oldest first: what a turn reads of it."""
        await self.conversations.get(user, conversation_id)
        listed = await self.items.list(None, after=None, limit=HISTORY_ITEMS, order="desc", conversation_id=conversation_id)
        return listed["data"][::-1]

    async def get_item(self, user: Identity | None, conversation_id: str, item_id: str) -> dict[str, Any]:
        await self.conversations.get(user, conversation_id)
        try:
            return await self.items.get(None, f"{conversation_id}/{item_id}")
        except NotFoundError:
            raise NotFoundError(f"Item '{item_id}' not found in conversation '{conversation_id}'", param="item_id") from None

    async def delete_item(self, user: Identity | None, conversation_id: str, item_id: str) -> dict[str, Any]:
        conversation = await self.conversations.authorize(user, conversation_id, "update")
        await self.get_item(user, conversation_id, item_id)
        await self.items.delete(None, f"{conversation_id}/{item_id}")
        return conversation
