"""The model routing table: model id -> provider, persisted in the metadata kv store so every
ingress replica and every restart see the same list."""

import asyncio
import logging
import time

from providers.api.errors import ConflictError, NotFoundError
from providers.api.models import Model
from providers.storage.kvstore import KVStore

_PREFIX = "model:"
logger = logging.getLogger("ray.serve")


class ModelRegistry:
    """Request routing reads through a short-lived cache; a miss always reads the model's key, so a
    model registered on another replica is found at once, and a deletion reaches routing within
    `ttl_s` (the models API itself always reads the store). The requests that find the table expired
    share one read. While the store cannot be read, routing goes on from the table it last read, so a
    metadata store restart stalls no model."""

    def __init__(self, store: KVStore, ttl_s: float = 1.0):
        self.store = store
        self.ttl_s = ttl_s
        self._cache: dict[str, Model] = {}
        self._loaded_at = float("-inf")
        self._stale = False
        self._reloading: asyncio.Future | None = None

    async def _reload(self) -> dict[str, Model]:
        rows = await self.store.items_with_prefix(_PREFIX)
        self._cache = {key[len(_PREFIX):]: Model.model_validate_json(value) for key, value in rows}
        self._loaded_at = time.monotonic()
        self._stale = False
        return self._cache

    async def _models(self) -> dict[str, Model]:
        if time.monotonic() - self._loaded_at > self.ttl_s:
            if self._reloading is None:
                self._reloading = asyncio.ensure_future(self._reload())
                self._reloading.add_done_callback(self._reloaded)
            try:
                return await asyncio.shield(self._reloading)
            except Exception as exc:
                if self._loaded_at == float("-inf"):
                    raise
                if not self._stale:
                    self._stale = True
                    logger.warning("model registry: the store cannot be read (%s: %s); routing from the table read "
                                   "%.0f s ago until it can", type(exc).__name__, exc, time.monotonic() - self._loaded_at)
        return self._cache

    def _reloaded(self, reload: asyncio.Future) -> None:
        self._reloading = None
        if not reload.cancelled():
            reload.exception()  # retrieved: each waiter handled it

    async def check(self) -> None:
        """Raises unless the store answers a read."""
        await self.store.get(_PREFIX)

    async def list(self) -> list[Model]:
        return sorted((await self._reload()).values(), key=lambda m: m.identifier)

    async def get(self, model_id: str, *, fresh: bool = False) -> Model:
        """The model `model_id`; `fresh` reads the store instead of the cache."""
        model = None if fresh else (await self._models()).get(model_id)
        if model is None:  # one key read, not the whole table: unknown ids cost the store little
            stored = await self.store.get(_PREFIX + model_id)
            model = None if stored is None else Model.model_validate_json(stored)
            if model is not None:
                self._cache[model_id] = model
        if model is None:
            raise NotFoundError(f"Model '{model_id}' not found", param="model", code="model_not_found")
        return model

    async def register(self, model: Model, *, replace: bool = False) -> Model:
        if not replace and await self.store.get(_PREFIX + model.identifier) is not None:
            raise ConflictError(f"Model '{model.identifier}' is already registered", param="model_id")
        if not model.created:
            model = model.model_copy(update={"created": int(time.time())})
        await self.store.set(_PREFIX + model.identifier, model.model_dump_json())
        self._cache[model.identifier] = model
        return model

    async def unregister(self, model_id: str) -> None:
        if not await self.store.delete(_PREFIX + model_id):
            raise NotFoundError(f"Model '{model_id}' not found", param="model_id", code="model_not_found")
        self._cache.pop(model_id, None)
