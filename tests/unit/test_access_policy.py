"""Access rules: what `allows` decides for one record, and the SQL filter that lists rows, agree
for every user, owner, action and rule set, on the real SQLite and PostgreSQL."""

import itertools
import uuid

import pytest
from pydantic import ValidationError
from sqlalchemy import Column, MetaData, String, Table, Text, insert, select, true

from providers.access import AccessPolicy, AccessRule, Identity
from providers.access.policy import OwnerColumns
from providers.run_config import StorageConfig
from providers.storage import Storage
from tests.unit.test_kvstore import POSTGRES

ALICE = Identity(principal="alice", attributes={"teams": ["red"], "roles": ["analyst"]})
ALICE_TEAMMATE = Identity(principal="carol", attributes={"teams": ["red", "blue"]})
BOB = Identity(principal="bob", attributes={"teams": ["green"], "roles": ["engineer"]})
ADMIN = Identity(principal="root", attributes={"roles": ["admin"]})
TRICKY = Identity(principal="mallory", attributes={"teams": ['red"]|["teams","green', "%", "_"]})
USERS = [ALICE, ALICE_TEAMMATE, BOB, ADMIN, TRICKY, Identity(principal="nobody")]
OWNERS = [None, ALICE, BOB, ADMIN, TRICKY]

POLICIES = {
    "default": [],
    "admin_and_owner": [
        {"permit": {"actions": ["create", "read", "update", "delete"]}, "when": "user with admin in roles"},
        {"forbid": {"actions": ["delete"], "resource": "model::locked-*"}},
        {"permit": {"actions": ["read", "delete"]}, "when": ["user is owner"]},
        {"permit": {"actions": ["read"]}, "when": "user in owners teams", "description": "teammates read"},
    ],
    "principal_and_unless": [
        {"permit": {"principal": "bob", "actions": "read", "resource": "model::*"}},
        {"forbid": {"actions": ["read"]}, "unless": ["user is owner", "resource is unowned"]},
        {"permit": {"actions": ["read", "delete"]}, "when": "user not in owners roles"},
    ],
}


def test_default_policy_is_owner_only_with_admins_and_config_resources():
    policy = AccessPolicy()
    assert policy.allows(ALICE, "delete", "model", "m", ALICE)
    assert not policy.allows(ALICE_TEAMMATE, "read", "model", "m", ALICE), "sharing a team shares nothing"
    assert not policy.allows(ALICE_TEAMMATE, "delete", "file", "f", ALICE)
    assert not policy.allows(BOB, "read", "model", "m", ALICE)
    assert policy.allows(BOB, "read", "model", "m", None), "models of the run config are everyone's to use"
    assert not policy.allows(BOB, "delete", "model", "m", None)
    assert not policy.allows(BOB, "read", "chat_completion", "c", None), "records made with auth off: admins only"
    assert policy.allows(ADMIN, "read", "chat_completion", "c", None)
    assert policy.allows(ADMIN, "delete", "file", "f", ALICE)
    assert policy.allows(BOB, "create", "model", "m", BOB)
    assert policy.allows(None, "delete", "model", "m", ALICE), "authentication off: the one local user"
    assert AccessPolicy.is_admin(None) and AccessPolicy.is_admin(ADMIN) and not AccessPolicy.is_admin(ALICE)


def test_a_value_crafted_to_look_like_two_tags_matches_nothing():
    policy = AccessPolicy()
    assert not policy.allows(TRICKY, "read", "chat_completion", "x", BOB)
    assert not policy.allows(TRICKY, "read", "chat_completion", "x", ALICE)


@pytest.mark.parametrize("rule, problem", [
    ({"permit": {"actions": ["read"]}, "forbid": {"actions": ["read"]}}, "exactly one"),
    ({"permit": {"actions": ["read"]}, "when": "user is owner", "unless": "user is owner"}, "not both"),
    ({"permit": {"actions": ["read"]}, "when": "user owns everything"}, "unknown condition"),
    ({"permit": {"actions": ["read"], "resource": "models"}}, "<type>::<id glob>"),
    ({"permit": {"actions": ["write"]}}, "actions"),
])
def test_bad_rules_are_rejected_with_the_reason(rule, problem):
    with pytest.raises(ValidationError, match=problem):
        AccessRule.model_validate(rule)


@pytest.fixture(params=["sqlite", "postgres"])
async def owned_rows(request, tmp_path):
    """A table with one row per (owner, id) and each row's owner, on a real database."""
    backend = {"type": "sql_sqlite", "db_path": str(tmp_path / "acl.db")} if request.param == "sqlite" else {**POSTGRES, "type": "sql_postgres"}
    storage = Storage(StorageConfig.model_validate({"backends": {"db": backend}, "stores": {}}))
    engine = storage.engine("db")
    table = Table(f"acl_{uuid.uuid4().hex[:12]}", MetaData(), Column("id", String(64), primary_key=True),
                  Column("owner_principal", String(64)), Column("owner_tags", Text))
    rows, owners = [], {}
    for n, (owner, name) in enumerate(itertools.product(OWNERS, ["locked-a", "open_b", "open%c"])):
        row_id = f"{name}-{n}"
        owners[row_id] = owner
        rows.append({"id": row_id, "owner_principal": owner.principal if owner else None, "owner_tags": owner.tags() if owner else None})
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.create_all)
        await conn.execute(insert(table), rows)
    yield engine, table, owners
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.drop_all)
    await storage.close()


@pytest.mark.parametrize("policy_name", list(POLICIES))
async def test_sql_filter_selects_exactly_the_rows_allows_permits(owned_rows, policy_name):
    engine, table, owners = owned_rows
    policy = AccessPolicy([AccessRule.model_validate(r) for r in POLICIES[policy_name]])
    columns = OwnerColumns(table.c.id, table.c.owner_principal, table.c.owner_tags)
    async with engine.connect() as conn:
        for user, action in itertools.product(USERS + [None], ["read", "delete"]):
            predicate = policy.sql_filter(user, action, "model", columns)
            clause = true() if predicate is True else predicate
            if predicate is False:
                selected = set()
            else:
                selected = set((await conn.execute(select(table.c.id).where(clause))).scalars())
            expected = {i for i, owner in owners.items() if policy.allows(user, action, "model", i, owner)}
            assert selected == expected, (policy_name, user, action)
