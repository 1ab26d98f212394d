"""Chunks in Milvus: one collection per vector store with a dense vector (cosine), the text with
a BM25 function feeding a sparse vector for keyword search, the file id and the attributes.

The synchronous MilvusClient runs in threads (it is thread-safe); pymilvus's async client cannot
create indexes on milvus-lite. Callers flush once a file's chunks are in (see `flush`). A reopened
collection is loaded before use.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from pymilvus import AnnSearchRequest, DataType, Function, FunctionType, MilvusClient, RRFRanker

from providers.api.errors import InvalidRequestError, NotFoundError
from providers.api.vector_io import Chunk, ComparisonFilter, CompoundFilter, SearchHit, SearchMode
from providers.remote.milvus.config import MilvusIndexConfig
from providers.remote.milvus.filters import expression

_COLLECTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_OUTPUT = ["file_id", "text", "attributes"]
_MAX_TEXT = 65_535
_RRF_K = 60


class MilvusVectorIO:
    def __init__(self, client: MilvusClient, index: MilvusIndexConfig):
        self.client = client
        self.index = index
        for name in self.client.list_collections():
            self.client.load_collection(name)

    def _name(self, store_id: str) -> str:
        if not _COLLECTION.fullmatch(store_id):
            raise InvalidRequestError(f"'{store_id}' cannot name a Milvus collection", param="vector_store_id")
        return store_id

    async def create_store(self, store_id: str, dimension: int) -> None:
        await asyncio.to_thread(self._create, self._name(store_id), dimension)

    def _create(self, name: str, dimension: int) -> None:
        if self.client.has_collection(name):
            return
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=128)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        schema.add_field("text", DataType.VARCHAR, max_length=_MAX_TEXT, enable_analyzer=True)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("file_id", DataType.VARCHAR, max_length=128)
        schema.add_field("attributes", DataType.JSON)
        schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                     input_field_names=["text"], output_field_names=["sparse"]))
        index = self.client.prepare_index_params()
        index.add_index(field_name="vector", **self._dense_index())
        index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        # Strong: a search sees every insert acknowledged before it (a file marked completed is found).
        self.client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")

    def _dense_index(self) -> dict[str, Any]:
        params = {"HNSW": {"M": self.index.hnsw_m, "efConstruction": self.index.hnsw_ef_construction},
                  "IVF_FLAT": {"nlist": self.index.ivf_nlist}, "FLAT": {}}[self.index.index_type]
        return {"index_type": self.index.index_type, "metric_type": "COSINE", "params": params}

    def _dense_search_params(self, limit: int, ef: int | None = None) -> dict[str, Any]:
        params = {"HNSW": {"ef": max(ef or self.index.hnsw_ef, limit)}, "IVF_FLAT": {"nprobe": self.index.ivf_nprobe},
                  "FLAT": {}}[self.index.index_type]
        return {"metric_type": "COSINE", "params": params}

    async def delete_store(self, store_id: str) -> None:
        await asyncio.to_thread(self.client.drop_collection, self._name(store_id))

    async def insert(self, store_id: str, chunks: list[Chunk]) -> None:
        name = await self._existing(store_id)
        rows = []
        for chunk in chunks:
            if len(chunk.text.encode()) > _MAX_TEXT:
                raise InvalidRequestError(f"chunk {chunk.id} is longer than {_MAX_TEXT} bytes", param="chunking_strategy")
            rows.append({"id": chunk.id, "vector": chunk.embedding, "text": chunk.text, "file_id": chunk.file_id,
                         "attributes": chunk.attributes})
        if rows:
            await asyncio.to_thread(self.client.upsert, name, rows)

    async def flush(self, store_id: str) -> None:
        """Seal what was inserted so it is indexed: call once an ingestion is done, not per insert (each
        flush makes a segment), nor never (unflushed rows are searched by brute force, ~45 µs
        each per query in milvus-lite)."""
        await asyncio.to_thread(self.client.flush, await self._existing(store_id))

    async def delete_file(self, store_id: str, file_id: str) -> None:
        name = await self._existing(store_id)
        await asyncio.to_thread(self.client.delete, name, filter=f"file_id == {json.dumps(file_id)}")

    async def file_chunks(self, store_id: str, file_id: str) -> list[str]:
        """The texts of a file's chunks, in order (chunk ids end in a zero-padded position)."""
        name = await self._existing(store_id)
        rows = await asyncio.to_thread(self.client.query, name, filter=f"file_id == {json.dumps(file_id)}",
                                       output_fields=["id", "text"], limit=16_384)
        return [row["text"] for row in sorted(rows, key=lambda row: row["id"])]

    async def count(self, store_id: str) -> int:
        name = await self._existing(store_id)
        rows = await asyncio.to_thread(self.client.query, name, filter="", output_fields=["count(*)"])
        return rows[0]["count(*)"]

    async def search(self, store_id: str, *, embedding: list[float] | None, text: str | None, mode: SearchMode,
                     limit: int, filters: ComparisonFilter | CompoundFilter | None, ef: int | None = None) -> list[SearchHit]:
        name = await self._existing(store_id)
        expr = expression(filters) if filters is not None else ""
        if mode == "vector":
            hits = await asyncio.to_thread(
                self.client.search, name, data=[embedding], anns_field="vector", limit=limit, filter=expr,
                search_params=self._dense_search_params(limit, ef), output_fields=_OUTPUT)
            return [_hit(h, h["distance"]) for h in hits[0]]
        if mode == "keyword":
            hits = await asyncio.to_thread(
                self.client.search, name, data=[text], anns_field="sparse", limit=limit, filter=expr,
                search_params={"metric_type": "BM25"}, output_fields=_OUTPUT)
            return [_hit(h, abs(h["distance"])) for h in hits[0]]  # milvus-lite returns BM25 scores negated
        requests = [
            AnnSearchRequest(data=[embedding], anns_field="vector", param=self._dense_search_params(2 * limit, ef), limit=2 * limit, expr=expr),
            AnnSearchRequest(data=[text], anns_field="sparse", param={"metric_type": "BM25"}, limit=2 * limit, expr=expr),
        ]
        hits = await asyncio.to_thread(self.client.hybrid_search, name, reqs=requests, ranker=RRFRanker(_RRF_K),
                                       limit=limit, output_fields=_OUTPUT)
        return [_hit(h, h["distance"]) for h in hits[0]]

    async def _existing(self, store_id: str) -> str:
        name = self._name(store_id)
        if not await asyncio.to_thread(self.client.has_collection, name):
            raise NotFoundError(f"vector store '{store_id}' has no collection in Milvus", param="vector_store_id")
        return name

    async def shutdown(self) -> None:
        self.client.close()


def _hit(hit: dict[str, Any], score: float) -> SearchHit:
    entity = hit["entity"]
    return SearchHit(id=hit["id"], file_id=entity["file_id"], text=entity["text"],
                     attributes=entity.get("attributes") or {}, score=score)
