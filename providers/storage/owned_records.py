"""A SQL table of JSON records, each with its owner; reads filter by the access policy in the
query, so a list pages and counts only what the caller may read."""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from opentelemetry import trace
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    false,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from providers.access.identity import Identity
from providers.access.policy import AccessPolicy, OwnerColumns, Predicate
from providers.api.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from providers.storage.sql_engine import create_tables

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}

# Spans of the process's tracer when the graph traces (deployments/tracing.py); no-ops otherwise.
_tracer = trace.get_tracer("raystack.storage")


class OwnedRecords:
    """`resource_type` names the records in access rules (`<type>::<id glob>`); `noun` names one
    in errors; `filter_columns` are extra indexed string columns lists can filter on."""

    def __init__(self, engine: AsyncEngine, table_name: str, policy: AccessPolicy, *, resource_type: str,
                 noun: str, id_param: str, filter_columns: tuple[str, ...] = ()):
        self.engine = engine
        self.policy = policy
        self.resource_type = resource_type
        self.noun = noun
        self.id_param = id_param
        self.filter_columns = filter_columns
        self.table = Table(
            table_name, MetaData(),
            Column("id", String(255), primary_key=True),
            Column("created_us", BigInteger, nullable=False),  # when stored, in microseconds: the list order
            *[Column(name, String(512), nullable=False) for name in filter_columns],
            Column("owner_principal", String(255)),
            Column("owner_tags", Text),
            Column("owner", Text),
            Column("record", Text, nullable=False),
            Index(f"ix_{table_name}_created_id", "created_us", "id"),
        )
        self._insert = _INSERTS[engine.dialect.name]
        self._columns = OwnerColumns(self.table.c.id, self.table.c.owner_principal, self.table.c.owner_tags)

    async def create_table(self) -> None:
        await create_tables(self.engine, self.table.metadata)

    def row(self, record: dict[str, Any], owner: Identity | None, *, row_id: str | None = None,
            **filters: str) -> dict[str, Any]:
        """The row of `record` (keyed by its id unless `row_id` says otherwise), ordered in lists by
        the time this is called."""
        return {
            "id": row_id or record["id"],
            "created_us": time.time_ns() // 1000,
            **filters,
            "owner_principal": owner.principal if owner else None,
            "owner_tags": owner.tags() if owner else None,
            "owner": owner.model_dump_json() if owner else None,
            "record": json.dumps(record),
        }

    async def insert(self, rows: list[dict[str, Any]]) -> None:
        """Insert rows; an id already stored is left as it is, so a retried batch is harmless."""
        with _tracer.start_as_current_span("store.insert", attributes={"db.collection.name": self.table.name,
                                                                       "raystack.rows": len(rows)}):
            await self._insert_rows(rows)

    async def _insert_rows(self, rows: list[dict[str, Any]]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(self._insert(self.table).on_conflict_do_nothing(index_elements=["id"]), rows)

    async def insert_new(self, row: dict[str, Any]) -> bool:
        """Insert one row; False if its id is already stored (someone else got there first)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(self._insert(self.table).on_conflict_do_nothing(index_elements=["id"]), row)
        return result.rowcount == 1

    def _visible(self, user: Identity | None):
        predicate: Predicate = self.policy.sql_filter(user, "read", self.resource_type, self._columns)
        return true() if predicate is True else false() if predicate is False else predicate

    async def list(self, user: Identity | None, *, after: str | None, limit: int, order: Literal["asc", "desc"],
                   **filters: str | None) -> dict[str, Any]:
        t = self.table
        query = select(t.c.record).where(self._visible(user))
        for name, value in filters.items():
            if value is not None:
                query = query.where(t.c[name] == value)
        async with self.engine.connect() as conn:
            if after is not None:
                cursor = (await conn.execute(select(t.c.created_us, t.c.id).where(t.c.id == after, self._visible(user)))).first()
                if cursor is None:
                    raise InvalidRequestError(f"no {self.noun} '{after}' to list after", param="after")
                query = query.where(_beyond(t.c.created_us, t.c.id, cursor, order))
            ordering = (t.c.created_us.asc(), t.c.id.asc()) if order == "asc" else (t.c.created_us.desc(), t.c.id.desc())
            rows = (await conn.execute(query.order_by(*ordering).limit(limit + 1))).scalars().all()
        data = [json.loads(r) for r in rows[:limit]]
        return {
            "object": "list", "data": data, "has_more": len(rows) > limit,
            "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None,
        }

    async def get(self, user: Identity | None, record_id: str) -> dict[str, Any]:
        t = self.table
        async with self.engine.connect() as conn:
            record = (await conn.execute(select(t.c.record).where(t.c.id == record_id, self._visible(user)))).scalar()
        if record is None:
            raise NotFoundError(f"{self.noun.capitalize()} '{record_id}' not found", param=self.id_param)
        return json.loads(record)

    async def _authorized(self, conn, user: Identity | None, record_id: str, action: str):
        """The row (owner, record) if `user` may `action` it: 404 unless they can read it, 403 unless
        they may also do `action`."""
        t = self.table
        found = (await conn.execute(select(t.c.owner, t.c.record).where(t.c.id == record_id, self._visible(user)))).first()
        if found is None:
            raise NotFoundError(f"{self.noun.capitalize()} '{record_id}' not found", param=self.id_param)
        owner = Identity.model_validate_json(found.owner) if found.owner else None
        if not self.policy.allows(user, action, self.resource_type, record_id, owner):
            raise PermissionDeniedError(f"not allowed to {action} {self.noun} '{record_id}'", param=self.id_param)
        return found

    async def authorize(self, user: Identity | None, record_id: str, action: str) -> dict[str, Any]:
        """The record if `user` may `action` it: 404 unless they can read it, 403 unless they may also do `action`."""
        async with self.engine.connect() as conn:
            return json.loads((await self._authorized(conn, user, record_id, action)).record)

    async def update(self, user: Identity | None, record_id: str, changes: dict[str, Any], **filters: str) -> dict[str, Any]:
        """Merge `changes` into the record (and set filter columns)."""
        async with self.engine.begin() as conn:
            found = await self._authorized(conn, user, record_id, "update")
            record = {**json.loads(found.record), **changes}
            await conn.execute(update(self.table).where(self.table.c.id == record_id)
                               .values(record=json.dumps(record), **filters))
        return record

    async def load(self, record_id: str) -> dict[str, Any] | None:
        """The stored record, or None (no access check: for the service that owns the row)."""
        async with self.engine.connect() as conn:
            record = (await conn.execute(select(self.table.c.record).where(self.table.c.id == record_id))).scalar()
        return None if record is None else json.loads(record)

    async def load_many(self, record_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored records of `record_ids` by id, in one query (no access check: for the owning service)."""
        if not record_ids:
            return {}
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(self.table.c.id, self.table.c.record).where(self.table.c.id.in_(record_ids)))
        return {row_id: json.loads(record) for row_id, record in rows}

    async def replace(self, record_id: str, record: dict[str, Any], expected: dict[str, str] | None = None,
                      **columns: str) -> bool:
        """Store `record` as the row's record, and set filter columns, while the `expected` columns
        still hold (no access check: for the service that owns the row); False if they did not."""
        t = self.table
        async with self.engine.begin() as conn:
            result = await conn.execute(update(t).where(t.c.id == record_id, *[t.c[k] == v for k, v in (expected or {}).items()])
                                        .values(record=json.dumps(record), **columns))
        return result.rowcount == 1

    async def replace_unchanged(self, record_id: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
        """Store `new` as the row's record while it still holds `old` (as loaded from it; no access
        check); False if another writer stored something else first."""
        t = self.table
        async with self.engine.begin() as conn:
            result = await conn.execute(update(t).where(t.c.id == record_id, t.c.record == json.dumps(old))
                                        .values(record=json.dumps(new)))
        return result.rowcount == 1

    async def ids_where(self, **filters: str) -> list[str]:
        """The ids of rows matching `filters` (no access check)."""
        t = self.table
        async with self.engine.connect() as conn:
            return list((await conn.execute(select(t.c.id).where(*[t.c[k] == v for k, v in filters.items()]))).scalars())

    async def set_columns_if(self, record_id: str, expected: dict[str, str], **columns: str) -> bool:
        """Set filter columns of a row only while `expected` columns still hold (no access check);
        False if another writer changed them first."""
        t = self.table
        async with self.engine.begin() as conn:
            result = await conn.execute(update(t).where(t.c.id == record_id, *[t.c[k] == v for k, v in expected.items()])
                                        .values(**columns))
        return result.rowcount == 1

    async def count_by(self, column: str, **filters: str) -> dict[str, int]:
        """Row counts per value of `column` among rows matching `filters` (no access check)."""
        t = self.table
        query = select(t.c[column], func.count()).group_by(t.c[column])
        for name, value in filters.items():
            query = query.where(t.c[name] == value)
        async with self.engine.connect() as conn:
            return {value: n for value, n in await conn.execute(query)}

    async def delete_where(self, **filters: str) -> None:
        """Delete every row matching `filters` (no access check: for records that belong to another)."""
        t = self.table
        async with self.engine.begin() as conn:
            await conn.execute(delete(t).where(*[t.c[name] == value for name, value in filters.items()]))

    async def delete(self, user: Identity | None, record_id: str) -> dict[str, Any]:
        """Delete and return the record."""
        async with self.engine.begin() as conn:
            found = await self._authorized(conn, user, record_id, "delete")
            await conn.execute(delete(self.table).where(self.table.c.id == record_id))
        return json.loads(found.record)


def _beyond(created_col, id_col, cursor, order: str):
    """Rows after the cursor row in (created_us, id) order."""
    if order == "asc":
        return or_(created_col > cursor.created_us, and_(created_col == cursor.created_us, id_col > cursor.id))
    return or_(created_col < cursor.created_us, and_(created_col == cursor.created_us, id_col < cursor.id))
