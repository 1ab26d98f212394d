"""A routing table of owned resources (datasets, benchmarks) in the metadata kv store: every
replica and every restart see the same entries, and each caller only the ones the policy lets it read."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel

from providers.access import AccessPolicy, Identity
from providers.api.errors import ConflictError, NotFoundError, PermissionDeniedError
from providers.storage.kvstore import KVStore

Resource = TypeVar("Resource", bound=BaseModel)


class OwnedResources(Generic[Resource]):
    """Entries of `resource_type` (`Resource` has `identifier` and `owner`), named `noun` in errors."""

    def __init__(self, store: KVStore, policy: AccessPolicy, model: type[Resource], *, resource_type: str,
                 noun: str, id_param: str):
        self.store = store
        self.policy = policy
        self.model = model
        self.resource_type = resource_type
        self.noun = noun
        self.id_param = id_param
        self._prefix = f"{resource_type}:"

    def check_create(self, user: Identity | None, resource_id: str) -> None:
        if not self.policy.allows(user, "create", self.resource_type, resource_id, user):
            raise PermissionDeniedError(f"not allowed to create {self.noun} '{resource_id}'", param=self.id_param)

    async def exists(self, resource_id: str) -> bool:
        return await self.store.get(self._prefix + resource_id) is not None

    async def add(self, resource: Resource) -> Resource:
        if await self.exists(resource.identifier):
            raise ConflictError(f"{self.noun.capitalize()} '{resource.identifier}' already exists", param=self.id_param)
        await self.replace(resource)
        return resource

    async def replace(self, resource: Resource) -> None:
        await self.store.set(self._prefix + resource.identifier, resource.model_dump_json())

    async def get(self, user: Identity | None, resource_id: str, action: str = "read") -> Resource:
        """The entry if `user` may `action` it: 404 unless they may read it, 403 unless also `action`."""
        value = await self.store.get(self._prefix + resource_id)
        resource = None if value is None else self.model.model_validate_json(value)
        if resource is None or not self._may(user, "read", resource):
            raise NotFoundError(f"{self.noun.capitalize()} '{resource_id}' not found", param=self.id_param)
        if action != "read" and not self._may(user, action, resource):
            raise PermissionDeniedError(f"not allowed to {action} {self.noun} '{resource_id}'", param=self.id_param)
        return resource

    async def list(self, user: Identity | None) -> list[Resource]:
        resources = [self.model.model_validate_json(v) for _, v in await self.store.items_with_prefix(self._prefix)]
        return [r for r in resources if self._may(user, "read", r)]

    async def remove(self, resource_id: str) -> None:
        await self.store.delete(self._prefix + resource_id)

    def _may(self, user: Identity | None, action: str, resource: Resource) -> bool:
        return self.policy.allows(user, action, self.resource_type, resource.identifier, resource.owner)
