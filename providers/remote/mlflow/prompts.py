"""MLflowPrompts: the Prompts API's records in MLflow's prompt registry, through MLflow's own client.

A prompt is an MLflow prompt of the same name, each version an immutable MLflow prompt version,
the default version the version under the `default_alias` alias (the latest when no version has
it), and the owner the prompt's tags. MLflow's client is synchronous: every call runs in a thread.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Callable, TypeVar

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from providers.api.errors import (
    APIError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    ServiceUnavailableError,
)
from providers.remote.mlflow.config import MLflowPromptsConfig

T = TypeVar("T")


class MLflowPrompts:
    def __init__(self, config: MLflowPromptsConfig):
        # MLflow's client retries a failed call for minutes by default; the graph answers a 503 instead.
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, round(config.timeout_s)))
        self.config = config
        self.client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)

    async def create(self, prompt_id: str, template: str, tags: dict[str, str]) -> None:
        def create() -> None:
            self.client.create_prompt(prompt_id, tags=tags)
            self.client.create_prompt_version(prompt_id, template)
            self.client.set_prompt_alias(prompt_id, self.config.default_alias, 1)
        await self._call(create)

    async def head(self, prompt_id: str) -> dict[str, Any] | None:
        return await self._call(lambda: self._head(prompt_id))

    async def version(self, prompt_id: str, version: int) -> str | None:
        """A text template; a chat prompt (a list of messages) is a 400, as the Prompts API has none."""
        found = await self._call(lambda: self._missing_as_none(lambda: self.client.get_prompt_version(prompt_id, version)))
        if found is not None and not found.is_text_prompt:
            raise InvalidRequestError(f"version {version} of prompt '{prompt_id}' is a chat prompt in MLflow (a list of "
                                      "messages); the Prompts API serves text prompts only", param="prompt_id")
        return None if found is None else found.template

    async def versions(self, prompt_id: str) -> list[dict[str, Any]]:
        """The text versions; chat versions are left out."""
        found = await self._call(lambda: self.client.search_prompt_versions(prompt_id, max_results=self.config.max_prompts))
        return sorted(({"version": int(v.version), "prompt": v.template} for v in found if v.is_text_prompt),
                      key=lambda v: v["version"])

    async def heads(self) -> list[dict[str, Any]]:
        """Every prompt's head: two calls to the server each, after the search that gives their tags."""
        def heads() -> list[dict[str, Any]]:
            found = self.client.search_prompts(max_results=self.config.max_prompts)
            return [head for head in (self._head(prompt.name, prompt.tags) for prompt in found) if head is not None]
        return await self._call(heads)

    async def add_version(self, prompt_id: str, template: str, latest: int) -> int:
        """The new version's number. MLflow has no compare-and-set: a version another writer added
        after `latest` makes this one lose, and it is deleted again."""
        def add() -> int:
            version = int(self.client.create_prompt_version(prompt_id, template).version)
            others = [int(v.version) for v in self.client.search_prompt_versions(prompt_id, max_results=self.config.max_prompts)
                      if latest < int(v.version) < version]
            if others:
                self.client.delete_prompt_version(prompt_id, str(version))
                raise ConflictError(f"prompt '{prompt_id}' was updated to version {min(others)} meanwhile; "
                                    "update from the latest", param="version")
            return version
        return await self._call(add)

    async def set_default(self, prompt_id: str, version: int) -> None:
        await self._call(lambda: self.client.set_prompt_alias(prompt_id, self.config.default_alias, version))

    async def delete(self, prompt_id: str) -> None:
        def delete() -> None:
            for version in self.client.search_prompt_versions(prompt_id, max_results=self.config.max_prompts):
                self.client.delete_prompt_version(prompt_id, str(version.version))
            self.client.delete_prompt(prompt_id)
        await self._call(delete)

    async def health(self) -> dict[str, Any]:
        try:
            await self._call(lambda: self.client.search_prompts(max_results=1))
        except APIError as exc:
            return {"status": "Error", "message": exc.message}
        return {"status": "OK"}

    async def shutdown(self) -> None:
        return None

    def _head(self, prompt_id: str, tags: dict[str, str] | None = None) -> dict[str, Any] | None:
        """The prompt's tags (read unless given), latest version and default version; None when there
        is no such prompt."""
        # Versions first: MLflow's get_prompt answers None for a server it cannot reach, as for a missing prompt.
        found = self._missing_as_none(lambda: self.client.search_prompt_versions(prompt_id, max_results=self.config.max_prompts))
        versions = [int(v.version) for v in found or []]
        if tags is None:
            prompt = self.client.get_prompt(prompt_id) if versions else None
            tags = None if prompt is None else prompt.tags
        if not versions or tags is None:
            return None
        default = self._missing_as_none(lambda: self.client.get_prompt_version_by_alias(prompt_id, self.config.default_alias),
                                        also="INVALID_PARAMETER_VALUE")  # MLflow's answer for an alias no version has
        tags = {k: v for k, v in tags.items() if not k.startswith("_mlflow")}
        return {"prompt_id": prompt_id, "tags": tags, "latest_version": max(versions),
                "default_version": int(default.version) if default is not None else max(versions)}

    @staticmethod
    def _missing_as_none(call: Callable[[], T], also: str | None = None) -> T | None:
        try:
            return call()
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", also):
                return None
            raise

    async def _call(self, call: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(call)
        except APIError:
            raise
        except MlflowException as exc:
            raise self._error(exc) from None
        except OSError as exc:
            raise ServiceUnavailableError(f"the prompt registry at {self.config.tracking_uri} is unreachable: {exc}") from None

    def _error(self, exc: MlflowException) -> APIError:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return NotFoundError(exc.message, param="prompt_id")
        if exc.error_code == "RESOURCE_ALREADY_EXISTS":
            return ConflictError(exc.message, param="prompt_id")
        if "API request to" in exc.message:  # the client's words for a call that got no answer
            return ServiceUnavailableError(f"the prompt registry at {self.config.tracking_uri} is unreachable: "
                                           f"{exc.message[:300]}")
        return ProviderError(f"the prompt registry at {self.config.tracking_uri} failed: {exc.message[:500]}")
