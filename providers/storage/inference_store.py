"""The inference store: every chat completion with its input messages, model and owner.

Writes go through a write-behind queue; reads filter by the access policy inside the SQL query,
so a list pages and counts only what the caller may read.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Literal

from sqlalchemy import (BigInteger, Column, Index, MetaData, String, Table, Text, and_, delete, false, or_,
                        select, true)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from providers.access.identity import Identity
from providers.access.policy import AccessPolicy, OwnerColumns, Predicate
from providers.api.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from providers.run_config import SQLStoreRef
from providers.storage.write_queue import WriteBehindQueue

RESOURCE_TYPE = "chat_completion"
_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def completions_table(name: str) -> Table:
    return Table(
        name, MetaData(),
        Column("id", String(255), primary_key=True),
        Column("created", BigInteger, nullable=False),
        Column("model", String(512), nullable=False),
        Column("owner_principal", String(255)),
        Column("owner_tags", Text),
        Column("owner", Text),
        Column("record", Text, nullable=False),
        Index(f"ix_{name}_created_id", "created", "id"),
    )


class InferenceStore:
    def __init__(self, engine: AsyncEngine, ref: SQLStoreRef, policy: AccessPolicy):
        self.engine = engine
        self.policy = policy
        self.table = completions_table(ref.table_name)
        self._insert = _INSERTS[engine.dialect.name]
        self._columns = OwnerColumns(self.table.c.id, self.table.c.owner_principal, self.table.c.owner_tags)
        self.queue: WriteBehindQueue[dict[str, Any]] = WriteBehindQueue(
            self._write, max_size=ref.max_write_queue_size, num_writers=ref.num_writers, name=f"inference store {ref.table_name}",
        )

    async def create_table(self) -> None:
        """Create the table if missing; replicas starting together may race, and one of them wins."""
        for attempt in range(3):
            try:
                async with self.engine.begin() as conn:
                    await conn.run_sync(self.table.metadata.create_all, checkfirst=True)
                return
            except DBAPIError:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))

    # ------------------------------------------------------------ writes

    def row(self, completion: dict[str, Any], input_messages: list[dict[str, Any]], owner: Identity | None) -> dict[str, Any]:
        return {
            "id": completion["id"],
            "created": int(completion.get("created") or time.time()),
            "model": completion.get("model", ""),
            "owner_principal": owner.principal if owner else None,
            "owner_tags": owner.tags() if owner else None,
            "owner": owner.model_dump_json() if owner else None,
            "record": json.dumps({**completion, "input_messages": input_messages}),
        }

    async def _write(self, rows: list[dict[str, Any]]) -> None:
        # A retried batch may have been committed already: existing ids are left as they are.
        async with self.engine.begin() as conn:
            await conn.execute(self._insert(self.table).on_conflict_do_nothing(index_elements=["id"]), rows)

    async def close(self) -> None:
        await self.queue.close()

    # ------------------------------------------------------------ reads

    def _visible(self, user: Identity | None, action: str = "read"):
        return _clause(self.policy.sql_filter(user, action, RESOURCE_TYPE, self._columns))

    async def list(self, user: Identity | None, *, after: str | None, limit: int, model: str | None,
                   order: Literal["asc", "desc"]) -> dict[str, Any]:
        t = self.table
        query = select(t.c.record).where(self._visible(user))
        if model is not None:
            query = query.where(t.c.model == model)
        async with self.engine.connect() as conn:
            if after is not None:
                cursor = (await conn.execute(select(t.c.created, t.c.id).where(t.c.id == after, self._visible(user)))).first()
                if cursor is None:
                    raise InvalidRequestError(f"no chat completion '{after}' to list after", param="after")
                query = query.where(_beyond(t.c.created, t.c.id, cursor, order))
            ordering = (t.c.created.asc(), t.c.id.asc()) if order == "asc" else (t.c.created.desc(), t.c.id.desc())
            rows = (await conn.execute(query.order_by(*ordering).limit(limit + 1))).scalars().all()
        data = [json.loads(r) for r in rows[:limit]]
        return {
            "object": "list", "data": data, "has_more": len(rows) > limit,
            "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None,
        }

    async def get(self, user: Identity | None, completion_id: str) -> dict[str, Any]:
        t = self.table
        async with self.engine.connect() as conn:
            record = (await conn.execute(select(t.c.record).where(t.c.id == completion_id, self._visible(user)))).scalar()
        if record is None:
            raise NotFoundError(f"Chat completion '{completion_id}' not found", param="completion_id")
        return json.loads(record)

    async def delete(self, user: Identity | None, completion_id: str) -> None:
        """Only what the user can read can be found; what they can read but not delete is a 403."""
        t = self.table
        async with self.engine.begin() as conn:
            found = (await conn.execute(select(t.c.owner).where(t.c.id == completion_id, self._visible(user)))).first()
            if found is None:
                raise NotFoundError(f"Chat completion '{completion_id}' not found", param="completion_id")
            owner = Identity.model_validate_json(found.owner) if found.owner else None
            if not self.policy.allows(user, "delete", RESOURCE_TYPE, completion_id, owner):
                raise PermissionDeniedError(f"not allowed to delete chat completion '{completion_id}'", param="completion_id")
            await conn.execute(delete(t).where(t.c.id == completion_id))


def _clause(predicate: Predicate):
    return true() if predicate is True else false() if predicate is False else predicate


def _beyond(created_col, id_col, cursor, order: str):
    """Rows after the cursor row in (created, id) order."""
    if order == "asc":
        return or_(created_col > cursor.created, and_(created_col == cursor.created, id_col > cursor.id))
    return or_(created_col < cursor.created, and_(created_col == cursor.created, id_col < cursor.id))
