"""Prompts: versioned `{{ variable }}` templates in the `prompts` store.

Two tables: one row per prompt (its owner, latest and default version), and one per version. A
new version must name the latest one; two updates racing from the same version both try to store
the next, and the one that loses gets a 409.
"""

from __future__ import annotations

import secrets
from typing import Any

from deployments.services.prompt_registry import RegistryPromptService
from providers.access import Identity
from providers.api.errors import ConflictError, NotFoundError, PermissionDeniedError
from providers.api.prompts import CreatePromptRequest, SetDefaultVersionRequest, UpdatePromptRequest, checked_variables, render
from providers.storage.owned_records import OwnedRecords


class PromptService:
    def __init__(self, heads: OwnedRecords, versions: OwnedRecords):
        self.heads = heads
        self.versions = versions

    def _version_row(self, prompt_id: str, version: int, template: str, variables: list[str]) -> dict[str, Any]:
        record = {"id": f"{prompt_id}@{version}", "prompt_id": prompt_id, "version": version, "prompt": template,
                  "variables": variables}
        return self.versions.row(record, None, prompt_id=prompt_id)

    @staticmethod
    def _view(record: dict[str, Any], head: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in record.items() if k != "id"}
        return {**view, "is_default": record["version"] == head["default_version"]}

    async def create(self, user: Identity | None, request: CreatePromptRequest) -> dict[str, Any]:
        prompt_id = f"pmpt_{secrets.token_hex(24)}"
        if not self.heads.policy.allows(user, "create", "prompt", prompt_id, user):
            raise PermissionDeniedError("not allowed to create prompts")
        variables = checked_variables(request.prompt, request.variables)
        row = self._version_row(prompt_id, 1, request.prompt, variables)
        await self.versions.insert([row])
        head = {"id": prompt_id, "latest_version": 1, "default_version": 1}
        await self.heads.insert([self.heads.row(head, user)])
        return await self.get(user, prompt_id)

    async def get(self, user: Identity | None, prompt_id: str, version: int | None = None) -> dict[str, Any]:
        head = await self.heads.get(user, prompt_id)
        wanted = version or head["default_version"]
        try:
            record = await self.versions.get(None, f"{prompt_id}@{wanted}")
        except NotFoundError:
            raise NotFoundError(f"Prompt '{prompt_id}' has no version {wanted}", param="version") from None
        return self._view(record, head)

    async def render(self, user: Identity | None, prompt_id: str, version: int | None,
                     values: dict[str, str]) -> str:
        return render((await self.get(user, prompt_id, version))["prompt"], values)

    async def list(self, user: Identity | None) -> dict[str, Any]:
        """The caller's prompts at their default versions: two queries, whatever their number."""
        heads = (await self.heads.list(user, after=None, limit=10_000, order="asc"))["data"]
        defaults = await self.versions.load_many([f"{head['id']}@{head['default_version']}" for head in heads])
        return {"object": "list", "data": [self._view(defaults[f"{head['id']}@{head['default_version']}"], head)
                                           for head in heads if f"{head['id']}@{head['default_version']}" in defaults]}

    async def versions_of(self, user: Identity | None, prompt_id: str) -> dict[str, Any]:
        head = await self.heads.get(user, prompt_id)
        rows = await self.versions.list(None, after=None, limit=10_000, order="asc", prompt_id=prompt_id)
        return {"object": "list", "data": [self._view(record, head) for record in rows["data"]]}

    async def update(self, user: Identity | None, prompt_id: str, request: UpdatePromptRequest) -> dict[str, Any]:
        head = await self.heads.authorize(user, prompt_id, "update")
        latest = head["latest_version"]
        if request.version != latest:
            raise ConflictError(f"version {request.version} is not the latest version of prompt '{prompt_id}' "
                                f"({latest}); update from the latest", param="version")
        variables = checked_variables(request.prompt, request.variables)
        if not await self.versions.insert_new(self._version_row(prompt_id, latest + 1, request.prompt, variables)):
            raise ConflictError(f"prompt '{prompt_id}' was updated to version {latest + 1} meanwhile; "
                                "update from the latest", param="version")
        changes = {"latest_version": latest + 1, **({"default_version": latest + 1} if request.set_as_default else {})}
        await self.heads.update(user, prompt_id, changes)
        return await self.get(user, prompt_id, latest + 1)

    async def set_default(self, user: Identity | None, prompt_id: str, request: SetDefaultVersionRequest) -> dict[str, Any]:
        await self.heads.authorize(user, prompt_id, "update")
        await self.get(user, prompt_id, request.version)  # the version must exist
        await self.heads.update(user, prompt_id, {"default_version": request.version})
        return await self.get(user, prompt_id)

    async def delete(self, user: Identity | None, prompt_id: str) -> None:
        await self.heads.delete(user, prompt_id)
        await self.versions.delete_where(prompt_id=prompt_id)


Prompts = PromptService | RegistryPromptService  # the SQL store (inline::sql), or a registry provider (remote::mlflow)
