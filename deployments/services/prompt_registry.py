"""Prompts kept in a prompt registry outside the graph (`remote::mlflow`), behind the same methods as
the SQL prompts service: the owner is checked here, from the prompt's tags, and reads are reused
for `cache_ttl_s` in this replica, so a Responses turn does not call the registry every time.

A prompt with no raystack owner tag was registered in the registry itself: like the models of the
run config, every user may read it and only administrators change it.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any, Awaitable, Callable

from deployments.clients import PromptsClient
from providers.access import AccessPolicy, Identity
from providers.api.errors import ConflictError, InvalidRequestError, NotFoundError, PermissionDeniedError
from providers.api.prompts import (
    CreatePromptRequest,
    SetDefaultVersionRequest,
    UpdatePromptRequest,
    checked_variables,
    placeholders,
    render,
)

OWNER_TAG = "raystack.owner"
ATTRIBUTES_TAG = "raystack.attributes"
CACHED_READS = 1024


def owner_tags(user: Identity | None) -> dict[str, str]:
    if user is None:
        return {}
    return {OWNER_TAG: user.principal, ATTRIBUTES_TAG: json.dumps(user.attributes, sort_keys=True)}


def owner_of(tags: dict[str, str]) -> Identity | None:
    if OWNER_TAG not in tags:
        return None
    return Identity(principal=tags[OWNER_TAG], attributes=json.loads(tags.get(ATTRIBUTES_TAG) or "{}"))


class RecentReads:
    """Values read in the last `ttl_s` seconds, at most CACHED_READS of them."""

    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self.entries: dict[tuple, tuple[float, Any]] = {}

    async def get(self, key: tuple, read: Callable[[], Awaitable[Any]]) -> Any:
        now = time.monotonic()
        hit = self.entries.get(key)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        value = await read()
        if len(self.entries) >= CACHED_READS:
            self.entries = {k: v for k, v in self.entries.items() if now - v[0] < self.ttl_s}
            if len(self.entries) >= CACHED_READS:
                self.entries.pop(next(iter(self.entries)))
        self.entries[key] = (now, value)
        return value

    def forget(self, prompt_id: str) -> None:
        self.entries = {k: v for k, v in self.entries.items() if k[1] != prompt_id}


class RegistryPromptService:
    def __init__(self, registry: PromptsClient, policy: AccessPolicy, cache_ttl_s: float):
        self.registry = registry
        self.policy = policy
        self.reads = RecentReads(cache_ttl_s)

    def _may(self, user: Identity | None, action: str, prompt_id: str, head: dict[str, Any]) -> bool:
        owner = owner_of(head["tags"])
        if owner is None and action == "read":
            return True
        return self.policy.allows(user, action, "prompt", prompt_id, owner)

    async def _head(self, user: Identity | None, prompt_id: str, action: str = "read") -> dict[str, Any]:
        """The prompt's head if `user` may `action` it: 404 unless they may read it, 403 unless they may
        also `action` it. A change reads the registry afresh."""
        if action == "read":
            head = await self.reads.get(("head", prompt_id), lambda: self.registry.head(prompt_id))
        else:
            head = await self.registry.head(prompt_id)
        if head is None or not self._may(user, "read", prompt_id, head):
            raise NotFoundError(f"Prompt '{prompt_id}' not found", param="prompt_id")
        if action != "read" and not self._may(user, action, prompt_id, head):
            raise PermissionDeniedError(f"not allowed to {action} prompt '{prompt_id}'", param="prompt_id")
        return head

    async def _template(self, prompt_id: str, version: int) -> str:
        template = await self.reads.get(("version", prompt_id, version), lambda: self.registry.version(prompt_id, version))
        if template is None:
            raise NotFoundError(f"Prompt '{prompt_id}' has no version {version}", param="version")
        return template

    @staticmethod
    def _view(prompt_id: str, version: int, template: str, head: dict[str, Any]) -> dict[str, Any]:
        return {"prompt_id": prompt_id, "version": version, "prompt": template, "variables": placeholders(template),
                "is_default": version == head["default_version"]}

    async def create(self, user: Identity | None, request: CreatePromptRequest) -> dict[str, Any]:
        prompt_id = f"pmpt_{secrets.token_hex(24)}"
        if not self.policy.allows(user, "create", "prompt", prompt_id, user):
            raise PermissionDeniedError("not allowed to create prompts")
        checked_variables(request.prompt, request.variables)
        await self.registry.create(prompt_id, request.prompt, owner_tags(user))
        return self._view(prompt_id, 1, request.prompt, {"default_version": 1})

    async def get(self, user: Identity | None, prompt_id: str, version: int | None = None) -> dict[str, Any]:
        head = await self._head(user, prompt_id)
        wanted = version or head["default_version"]
        return self._view(prompt_id, wanted, await self._template(prompt_id, wanted), head)

    async def render(self, user: Identity | None, prompt_id: str, version: int | None, values: dict[str, str]) -> str:
        return render((await self.get(user, prompt_id, version))["prompt"], values)

    async def list(self, user: Identity | None) -> dict[str, Any]:
        """The caller's prompts at their default versions; one whose default is a chat prompt is left out."""
        data = []
        for head in await self.registry.heads():
            if self._may(user, "read", head["prompt_id"], head):
                try:
                    template = await self._template(head["prompt_id"], head["default_version"])
                except InvalidRequestError:
                    continue
                data.append(self._view(head["prompt_id"], head["default_version"], template, head))
        return {"object": "list", "data": data}

    async def versions_of(self, user: Identity | None, prompt_id: str) -> dict[str, Any]:
        head = await self._head(user, prompt_id)
        return {"object": "list", "data": [self._view(prompt_id, v["version"], v["prompt"], head)
                                           for v in await self.registry.versions(prompt_id)]}

    async def update(self, user: Identity | None, prompt_id: str, request: UpdatePromptRequest) -> dict[str, Any]:
        head = await self._head(user, prompt_id, "update")
        if request.version != head["latest_version"]:
            raise ConflictError(f"version {request.version} is not the latest version of prompt '{prompt_id}' "
                                f"({head['latest_version']}); update from the latest", param="version")
        checked_variables(request.prompt, request.variables)
        version = await self.registry.add_version(prompt_id, request.prompt, head["latest_version"])
        if request.set_as_default:
            await self.registry.set_default(prompt_id, version)
        self.reads.forget(prompt_id)
        return await self.get(user, prompt_id, version)

    async def set_default(self, user: Identity | None, prompt_id: str, request: SetDefaultVersionRequest) -> dict[str, Any]:
        await self._head(user, prompt_id, "update")
        await self._template(prompt_id, request.version)  # the version must exist
        await self.registry.set_default(prompt_id, request.version)
        self.reads.forget(prompt_id)
        return await self.get(user, prompt_id)

    async def delete(self, user: Identity | None, prompt_id: str) -> None:
        await self._head(user, prompt_id, "delete")
        await self.registry.delete(prompt_id)
        self.reads.forget(prompt_id)
