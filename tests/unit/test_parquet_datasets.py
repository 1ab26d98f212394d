"""The Parquet dataset store on its own: rows, pages across parts, typed appends (no Ray)."""

import asyncio

import pytest

from providers.api.errors import InvalidRequestError, NotFoundError
from providers.inline.parquet.config import ParquetDatasetsConfig
from providers.inline.parquet.datasets import ParquetDatasets

ROWS = [{"input_query": f"q{i}", "expected_answer": f"a{i}", "weight": i} for i in range(10)]


@pytest.fixture
def store(tmp_path):
    return ParquetDatasets(ParquetDatasetsConfig(storage_dir=str(tmp_path / "ds"), allowed_paths=[str(tmp_path / "ok")],
                                                 max_page_rows=4))


async def pages(store, dataset_id, limit):
    rows, start = [], 0
    while True:
        page = await store.iterrows(dataset_id, start, limit)
        rows += page["data"]
        start += len(page["data"])
        if not page["has_more"]:
            return rows


async def test_pages_span_appended_parts_in_order(store):
    assert await store.import_rows("d", ROWS[:3]) == {"num_rows": 3, "columns": ["input_query", "expected_answer", "weight"]}
    await store.append_rows("d", ROWS[3:7])
    assert (await store.append_rows("d", ROWS[7:]))["num_rows"] == 10
    assert await pages(store, "d", 3) == ROWS
    assert (await store.iterrows("d", 8, None)) == {"data": ROWS[8:], "has_more": False}
    assert len((await store.iterrows("d", 0, 100))["data"]) == 4  # max_page_rows


async def test_appends_must_fit_the_rows_already_stored(store):
    await store.import_rows("d", ROWS[:2])
    with pytest.raises(InvalidRequestError) as extra:
        await store.append_rows("d", [{**ROWS[0], "colour": "red"}])
    assert extra.value.param == "rows.0.colour"
    with pytest.raises(InvalidRequestError) as typed:
        await store.append_rows("d", [{**ROWS[0], "weight": "heavy"}])
    assert typed.value.param == "rows"
    assert await pages(store, "d", 10) == ROWS[:2]


async def test_concurrent_appends_each_land_once(store):
    await store.import_rows("d", ROWS[:1])
    await asyncio.gather(*(store.append_rows("d", [row]) for row in ROWS[1:]))
    assert sorted(r["weight"] for r in await pages(store, "d", 4)) == list(range(10))


async def test_local_sources_outside_allowed_paths_and_unknown_datasets(store, tmp_path):
    with pytest.raises(InvalidRequestError, match="allowed_paths"):
        await store.import_uri("d", str(tmp_path / "elsewhere" / "x.jsonl"), {})
    with pytest.raises(InvalidRequestError, match="allowed_paths"):
        await store.import_uri("d", f"file://{tmp_path}/ok/../elsewhere.csv", {})
    with pytest.raises(InvalidRequestError, match="allowed_paths"):
        await store.import_uri("d", str(tmp_path / "ds"), {}), "the store's own folder"
    with pytest.raises(NotFoundError):
        await store.iterrows("nowhere", 0, 1)
    await store.import_rows("d", ROWS)
    await store.delete("d")
    with pytest.raises(NotFoundError):
        await store.iterrows("d", 0, 1)


@pytest.mark.parametrize("uri", ["hf://csv", "hf://json", "hf://text", "hf://.", "hf://ok/../..", "hf://a/b/c",
                                 "hf://org/..", "hf://relative/../../etc"])
async def test_hf_uris_name_an_org_and_a_dataset_only(store, uri):
    with pytest.raises(InvalidRequestError, match="hf:// names a dataset as 'org/name'"):
        await asyncio.wait_for(store.import_uri("d", uri, {}), timeout=10)

