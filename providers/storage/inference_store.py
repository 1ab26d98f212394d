"""The inference store: every chat completion with its input messages, model and owner, written
behind the response through a bounded queue."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from providers.access.identity import Identity
from providers.access.policy import AccessPolicy
from providers.run_config import SQLStoreRef
from providers.storage.outbox import Outbox
from providers.storage.owned_records import OwnedRecords
from providers.storage.write_queue import WriteBehindQueue

RESOURCE_TYPE = "chat_completion"


class InferenceStore(OwnedRecords):
    def __init__(self, engine: AsyncEngine, ref: SQLStoreRef, policy: AccessPolicy):
        super().__init__(engine, ref.table_name, policy, resource_type=RESOURCE_TYPE, noun="chat completion",
                         id_param="completion_id", filter_columns=("model",))
        self.queue: WriteBehindQueue[dict[str, Any]] = WriteBehindQueue(
            self.insert, max_size=ref.max_write_queue_size, num_writers=ref.num_writers,
            name=f"inference store {ref.table_name}",
            outbox=Outbox(ref.outbox_dir, ref.table_name) if ref.outbox_dir else None,
        )

    def completion_row(self, completion: dict[str, Any], input_messages: list[dict[str, Any]],
                       owner: Identity | None) -> dict[str, Any]:
        record = {**completion, "input_messages": input_messages}
        return self.row(record, owner, model=completion.get("model", ""))

    async def close(self) -> None:
        await self.queue.close()
