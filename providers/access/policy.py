"""Access rules: permit/forbid by action, resource and condition; the first rule that applies decides.

A policy answers two questions with one meaning: may this user act on this record (`allows`), and
which rows of a table may this user see (`sql_filter`, a WHERE clause, so lists page and count only
what the user may read). Every condition has both forms and the tests check that they agree.

Conditions, as written in `when` (all must hold) and `unless` (none may hold):
  user is owner / user is not owner
  user in owners <attribute> / user not in owners <attribute>   (shares a value of that attribute)
  user with <value> in <attribute> / user with <value> not in <attribute>
  resource is unowned / resource is owned
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from sqlalchemy import ColumnElement, and_, func, not_, or_

from providers.access.identity import Identity, attribute_tag

Action = Literal["create", "read", "update", "delete"]
ACTIONS: tuple[Action, ...] = ("create", "read", "update", "delete")

# A condition's SQL form, or a plain bool when it does not depend on the row.
Predicate = Union[bool, ColumnElement[bool]]


@dataclass(frozen=True)
class OwnerColumns:
    """The columns of a table that hold each row's id and owner."""

    id: ColumnElement[str]
    principal: ColumnElement[str]
    tags: ColumnElement[str]


# ---------------------------------------------------------------- conditions


@dataclass(frozen=True)
class UserIsOwner:
    def holds(self, user: Identity, owner: Identity | None) -> bool:
        return owner is not None and owner.principal == user.principal

    def sql(self, user: Identity, columns: OwnerColumns) -> Predicate:
        return func.coalesce(columns.principal, "") == user.principal


@dataclass(frozen=True)
class UserInOwners:
    attribute: str

    def holds(self, user: Identity, owner: Identity | None) -> bool:
        if owner is None:
            return False
        return bool(set(user.attributes.get(self.attribute, [])) & set(owner.attributes.get(self.attribute, [])))

    def sql(self, user: Identity, columns: OwnerColumns) -> Predicate:
        tags = func.coalesce(columns.tags, "")
        return _any([tags.contains(attribute_tag(self.attribute, v), autoescape=True)
                     for v in user.attributes.get(self.attribute, [])])


@dataclass(frozen=True)
class UserWith:
    value: str
    attribute: str

    def holds(self, user: Identity, owner: Identity | None) -> bool:
        return self.value in user.attributes.get(self.attribute, [])

    def sql(self, user: Identity, columns: OwnerColumns) -> Predicate:
        return self.holds(user, None)


@dataclass(frozen=True)
class ResourceUnowned:
    def holds(self, user: Identity, owner: Identity | None) -> bool:
        return owner is None

    def sql(self, user: Identity, columns: OwnerColumns) -> Predicate:
        return columns.principal.is_(None)


@dataclass(frozen=True)
class Not:
    inner: UserIsOwner | UserInOwners | UserWith | ResourceUnowned

    def holds(self, user: Identity, owner: Identity | None) -> bool:
        return not self.inner.holds(user, owner)

    def sql(self, user: Identity, columns: OwnerColumns) -> Predicate:
        return _not(self.inner.sql(user, columns))


# Each pattern builds its condition and says whether the text negates it.
_CONDITIONS = [
    (re.compile(r"user is (not )?owner"), lambda m: (UserIsOwner(), bool(m.group(1)))),
    (re.compile(r"user (not )?in owners (\S+)"), lambda m: (UserInOwners(m.group(2)), bool(m.group(1)))),
    (re.compile(r"user with (\S+) (not )?in (\S+)"), lambda m: (UserWith(m.group(1), m.group(3)), bool(m.group(2)))),
    (re.compile(r"resource is (owned|unowned)"), lambda m: (ResourceUnowned(), m.group(1) == "owned")),
]


def parse_condition(text: str):
    words = " ".join(text.split())
    for pattern, build in _CONDITIONS:
        match = pattern.fullmatch(words)
        if match:
            condition, negated = build(match)
            return Not(condition) if negated else condition
    raise ValueError(
        f"unknown condition {text!r}; use 'user is [not] owner', 'user [not] in owners <attribute>', "
        "'user with <value> [not] in <attribute>' or 'resource is [un]owned'"
    )


# ---------------------------------------------------------------- rules


class Scope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actions: list[Action]
    principal: str | None = None
    resource: str | None = None  # "<type>::<id glob>", e.g. "model::*" or "chat_completion::chatcmpl-*"

    @field_validator("actions", mode="before")
    @classmethod
    def _one_action_is_a_list(cls, value):
        return [value] if isinstance(value, str) else value

    @field_validator("resource")
    @classmethod
    def _type_and_glob(cls, value):
        if value is not None and "::" not in value:
            raise ValueError(f"resource {value!r} must be '<type>::<id glob>', e.g. 'model::*'")
        return value


class AccessRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    permit: Scope | None = None
    forbid: Scope | None = None
    when: str | list[str] | None = None
    unless: str | list[str] | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _one_scope_one_clause(self) -> "AccessRule":
        if (self.permit is None) == (self.forbid is None):
            raise ValueError("a rule has exactly one of 'permit' or 'forbid'")
        if self.when is not None and self.unless is not None:
            raise ValueError("a rule has 'when' or 'unless', not both")
        for text in _as_list(self.when) + _as_list(self.unless):
            parse_condition(text)
        return self

    @property
    def scope(self) -> Scope:
        return self.permit or self.forbid


def _as_list(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else value


@dataclass(frozen=True)
class _CompiledRule:
    permits: bool
    actions: frozenset[str]
    principal: str | None
    resource_type: str | None
    id_pattern: str | None  # glob on the id; None matches every id
    when: tuple
    unless: tuple

    @classmethod
    def of(cls, rule: AccessRule) -> "_CompiledRule":
        scope = rule.scope
        resource_type = id_pattern = None
        if scope.resource is not None:
            resource_type, id_pattern = scope.resource.split("::", 1)
            id_pattern = None if id_pattern == "*" else id_pattern
        return cls(
            permits=rule.permit is not None, actions=frozenset(scope.actions), principal=scope.principal,
            resource_type=resource_type, id_pattern=id_pattern,
            when=tuple(map(parse_condition, _as_list(rule.when))),
            unless=tuple(map(parse_condition, _as_list(rule.unless))),
        )

    def in_scope(self, user: Identity, action: str, resource_type: str) -> bool:
        return (
            action in self.actions
            and (self.principal is None or self.principal == user.principal)
            and (self.resource_type is None or self.resource_type == resource_type)
        )

    def applies(self, user: Identity, resource_id: str, owner: Identity | None) -> bool:
        if self.id_pattern is not None and not _glob_regex(self.id_pattern).fullmatch(resource_id):
            return False
        return all(c.holds(user, owner) for c in self.when) and not any(c.holds(user, owner) for c in self.unless)

    def applies_sql(self, user: Identity, columns: OwnerColumns) -> Predicate:
        parts: list[Predicate] = [c.sql(user, columns) for c in self.when]
        parts += [_not(c.sql(user, columns)) for c in self.unless]
        if self.id_pattern is not None:
            parts.append(columns.id.like(_glob_like(self.id_pattern), escape="\\"))
        return _all(parts)


ADMIN_ROLE = "admin"
# Resources the run config registers (no owner) that every signed-in user may use.
CONFIG_RESOURCE_TYPES = ("model", "dataset", "benchmark")

DEFAULT_RULES = [
    AccessRule(permit=Scope(actions=list(ACTIONS)), when=f"user with {ADMIN_ROLE} in roles",
               description="administrators act on everything, records without an owner included"),
    AccessRule(permit=Scope(actions=["create"]), description="anyone signed in may create"),
    AccessRule(permit=Scope(actions=["read", "update", "delete"]), when="user is owner"),
    *[AccessRule(permit=Scope(actions=["read"], resource=f"{kind}::*"), when="resource is unowned",
                 description="resources from the run config") for kind in CONFIG_RESOURCE_TYPES],
]


class AccessPolicy:
    """The rules of `server.access_policy`, or the default: owner-only. Users read, update and delete
    what they own, read the models, datasets and benchmarks of the run config, and create; users with
    the `admin` role act on everything. Sharing is opt-in, by rules such as
    `{permit: {actions: [read]}, when: "user in owners teams"}`. Records made while authentication was
    off have no owner: once it is on, only administrators see them. With authentication off (no user)
    the one local user is the administrator."""

    def __init__(self, rules: list[AccessRule] | None = None):
        self.rules = [_CompiledRule.of(r) for r in (rules or DEFAULT_RULES)]

    @staticmethod
    def is_admin(user: Identity | None) -> bool:
        """Authentication off (no user) or the `admin` role: what only the operator may do."""
        return user is None or ADMIN_ROLE in user.attributes.get("roles", [])

    def allows(self, user: Identity | None, action: str, resource_type: str, resource_id: str,
               owner: Identity | None) -> bool:
        if user is None:
            return True
        for rule in self.rules:
            if rule.in_scope(user, action, resource_type) and rule.applies(user, resource_id, owner):
                return rule.permits
        return False

    def sql_filter(self, user: Identity | None, action: str, resource_type: str, columns: OwnerColumns) -> Predicate:
        """The rows `user` may act on, as a WHERE clause: first-match-wins folded from the last rule
        (a permit rule P before the rest R gives `P or R`, a forbid rule F gives `not F and R`)."""
        if user is None:
            return True
        decision: Predicate = False
        for rule in reversed(self.rules):
            if not rule.in_scope(user, action, resource_type):
                continue
            applies = rule.applies_sql(user, columns)
            decision = _any([applies, decision]) if rule.permits else _all([_not(applies), decision])
        return decision


# ---------------------------------------------------------------- predicate algebra with constants


def _any(parts: list[Predicate]) -> Predicate:
    if any(p is True for p in parts):
        return True
    exprs = [p for p in parts if p is not False]
    return False if not exprs else exprs[0] if len(exprs) == 1 else or_(*exprs)


def _all(parts: list[Predicate]) -> Predicate:
    if any(p is False for p in parts):
        return False
    exprs = [p for p in parts if p is not True]
    return True if not exprs else exprs[0] if len(exprs) == 1 else and_(*exprs)


def _not(part: Predicate) -> Predicate:
    return (not part) if isinstance(part, bool) else not_(part)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.S)


def _glob_like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")
