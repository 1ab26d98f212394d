"""kv_redis: keys live under `<namespace>:`; shared by every replica on every node."""

import redis.asyncio as redis


class RedisKVStore:
    def __init__(self, client: redis.Redis, namespace: str):
        self.namespace = namespace
        self._client = client

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    async def get(self, key: str) -> str | None:
        return await self._client.get(self._key(key))

    async def set(self, key: str, value: str) -> None:
        await self._client.set(self._key(key), value)

    async def delete(self, key: str) -> bool:
        return await self._client.delete(self._key(key)) > 0

    async def items_with_prefix(self, prefix: str) -> list[tuple[str, str]]:
        pattern = _glob_escape(self._key(prefix)) + "*"
        keys = sorted([k async for k in self._client.scan_iter(match=pattern, count=500)])
        if not keys:
            return []
        values = await self._client.mget(keys)
        start = len(self.namespace) + 1
        return [(k[start:], v) for k, v in zip(keys, values) if v is not None]


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
