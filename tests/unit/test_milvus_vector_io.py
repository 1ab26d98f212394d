"""inline::milvus on a real milvus-lite directory: vector, keyword and hybrid search, attribute
filters, deleting a file's chunks, and collections that survive closing and reopening."""

import uuid

import numpy as np
import pytest
from pydantic import TypeAdapter

from providers.api.errors import InvalidRequestError, NotFoundError
from providers.api.vector_io import Chunk, Filter
from providers.inline.milvus import InlineMilvusConfig, create_provider
from providers.remote.milvus.filters import expression

DIM = 16
DOCS = [
    ("The vault code is 4-8-15-16.", {"team": "red", "year": 2024, "public": False}),
    ("Paris is the capital of France.", {"team": "blue", "year": 2019, "public": True}),
    ("Bananas are rich in potassium.", {"team": "red", "year": 2021, "public": True}),
    ("The quarterly report is due on Friday.", {"team": "green", "year": 2024, "public": False}),
]


def embed(text: str) -> list[float]:
    """A deterministic unit vector per text; nearby only for identical texts."""
    rng = np.random.default_rng(abs(hash(text)) % 2**32)
    vector = rng.normal(size=DIM)
    return (vector / np.linalg.norm(vector)).tolist()


@pytest.fixture(scope="module")
async def milvus(tmp_path_factory):
    provider = create_provider(InlineMilvusConfig(db_path=str(tmp_path_factory.mktemp("milvus") / "vectors.db")))
    yield provider
    await provider.shutdown()


@pytest.fixture
async def store(milvus):
    store_id = f"vs_{uuid.uuid4().hex}"
    await milvus.create_store(store_id, DIM)
    chunks = [Chunk(id=f"file-{i}-0", file_id=f"file-{i}", text=text, embedding=embed(text), attributes=attributes)
              for i, (text, attributes) in enumerate(DOCS)]
    await milvus.insert(store_id, chunks)
    await milvus.flush(store_id)
    return store_id


async def test_the_index_is_built_with_the_configured_parameters(milvus, store):
    described = milvus.client.describe_index(store, "vector")
    assert described["index_type"] == "HNSW"
    assert (int(described["params"]["M"]), int(described["params"]["efConstruction"])) == (32, 256)


def parse_filter(spec: dict):
    return TypeAdapter(Filter).validate_python(spec)


async def search(milvus, store_id, query: str, mode="vector", filters=None, limit=4):
    hits = await milvus.search(store_id, embedding=embed(query), text=query, mode=mode, limit=limit,
                               filters=parse_filter(filters) if filters else None)
    return hits


async def test_vector_search_ranks_the_matching_chunk_first(milvus, store):
    hits = await search(milvus, store, DOCS[1][0])
    assert hits[0].text == DOCS[1][0] and hits[0].file_id == "file-1"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].attributes == DOCS[1][1]


async def test_keyword_search_finds_words_and_hybrid_fuses_both(milvus, store):
    keyword = await search(milvus, store, "potassium bananas", mode="keyword")
    assert keyword[0].file_id == "file-2" and keyword[0].score > 0
    assert await search(milvus, store, "zeppelin", mode="keyword") == []
    hybrid = await search(milvus, store, "vault code", mode="hybrid")
    assert hybrid[0].file_id == "file-0"


@pytest.mark.parametrize("filters, files", [
    ({"type": "eq", "key": "team", "value": "red"}, {"file-0", "file-2"}),
    ({"type": "ne", "key": "team", "value": "red"}, {"file-1", "file-3"}),
    ({"type": "gte", "key": "year", "value": 2021}, {"file-0", "file-2", "file-3"}),
    ({"type": "eq", "key": "public", "value": True}, {"file-1", "file-2"}),
    ({"type": "in", "key": "team", "value": ["blue", "green"]}, {"file-1", "file-3"}),
    ({"type": "nin", "key": "team", "value": ["blue", "green"]}, {"file-0", "file-2"}),
    ({"type": "and", "filters": [{"type": "eq", "key": "team", "value": "red"},
                                 {"type": "lt", "key": "year", "value": 2022}]}, {"file-2"}),
    ({"type": "or", "filters": [{"type": "eq", "key": "year", "value": 2019},
                                {"type": "and", "filters": [{"type": "eq", "key": "team", "value": "green"},
                                                            {"type": "eq", "key": "public", "value": False}]}]},
     {"file-1", "file-3"}),
])
async def test_attribute_filters(milvus, store, filters, files):
    """The query shares a word with every document, so each mode finds exactly the filtered ones."""
    for mode in ("vector", "keyword", "hybrid"):
        hits = await search(milvus, store, "the report code capital bananas", mode=mode, filters=filters)
        assert {h.file_id for h in hits} == files, mode


def test_filter_values_are_quoted_not_injected():
    sneaky = parse_filter({"type": "eq", "key": "team", "value": 'red" or attributes["team"] != "x'})
    assert expression(sneaky) == 'attributes["team"] == "red\\" or attributes[\\"team\\"] != \\"x"'
    assert expression(parse_filter({"type": "eq", "key": "city", "value": "Zürich"})) == 'attributes["city"] == "Zürich"'
    with pytest.raises(InvalidRequestError):
        expression(parse_filter({"type": "in", "key": "team", "value": []}))
    with pytest.raises(InvalidRequestError):
        expression(parse_filter({"type": "eq", "key": "team", "value": ["a", "b"]}))
    with pytest.raises(ValueError):
        parse_filter({"type": "eq", "key": 'team"]', "value": "x"})


async def test_quoted_values_match_literally(milvus):
    store_id = f"vs_{uuid.uuid4().hex}"
    await milvus.create_store(store_id, DIM)
    tricky = 'she said "hi" \\ bye'
    await milvus.insert(store_id, [Chunk(id="c1", file_id="f1", text="quoted", embedding=embed("q"), attributes={"note": tricky})])
    hits = await search(milvus, store_id, "q", filters={"type": "eq", "key": "note", "value": tricky})
    assert [h.id for h in hits] == ["c1"]


async def test_deleting_a_file_removes_only_its_chunks(milvus, store):
    await milvus.delete_file(store, "file-0")
    assert await milvus.count(store) == len(DOCS) - 1
    assert "file-0" not in {h.file_id for h in await search(milvus, store, DOCS[0][0])}


async def test_unknown_and_invalid_store_ids(milvus):
    with pytest.raises(NotFoundError):
        await search(milvus, "vs_missing", "x")
    with pytest.raises(InvalidRequestError):
        await milvus.create_store("../etc", DIM)


async def test_collections_survive_closing_and_reopening(tmp_path):
    config = InlineMilvusConfig(db_path=str(tmp_path / "reopen.db"))
    first = create_provider(config)
    await first.create_store("vs_kept", DIM)
    await first.insert("vs_kept", [Chunk(id="c1", file_id="f1", text=DOCS[0][0], embedding=embed(DOCS[0][0]))])
    await first.shutdown()
    second = create_provider(config)
    assert (await search(second, "vs_kept", DOCS[0][0]))[0].id == "c1"
    await second.delete_store("vs_kept")
    with pytest.raises(NotFoundError):
        await second.count("vs_kept")
    await second.shutdown()
