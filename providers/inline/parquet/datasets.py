"""ParquetDatasets: each dataset is a folder of parts, each part a folder of Parquet files written at
once (a registration or one append). Imports from URIs stream through Ray Data, so a large source
never sits whole in a replica; pages are read with pyarrow from the files they fall in."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from providers.api.errors import InvalidRequestError, NotFoundError
from providers.inline.parquet.config import ParquetDatasetsConfig
from providers.storage.dataset_files import dataset_files, read_files

_PART = "part-{:06d}"
# A hub dataset id, `org/name`: never a path (`csv`, `.`, `dir/../..` would glob the replica's folders).
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


class ParquetDatasets:
    def __init__(self, config: ParquetDatasetsConfig):
        self.config = config
        self.root = Path(config.storage_dir).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        self.allowed = [Path(p).expanduser().resolve() for p in config.allowed_paths]
        # `hf://org/name` reads the local datasets cache only: this replica never downloads.
        os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
        self._locks: dict[str, asyncio.Lock] = {}

    async def import_rows(self, dataset_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """A new dataset of `rows`: its row count and column names."""
        table = _table(rows, None)
        return await asyncio.to_thread(self._write_first, dataset_id, lambda part: _write_table(table, part))

    async def import_uri(self, dataset_id: str, uri: str, metadata: dict[str, Any]) -> dict[str, Any]:
        """A new dataset read from a local path, `file://` URI or `hf://` dataset through Ray Data."""
        reader = self._reader(uri, metadata)
        return await asyncio.to_thread(self._write_first, dataset_id, reader)

    async def import_file(self, dataset_id: str, filename: str, content: bytes) -> dict[str, Any]:
        """A new dataset from an uploaded file's bytes (JSONL, CSV or Parquet, by its name)."""
        suffix = _format(filename)
        staging = self.root / f".upload-{dataset_id}{suffix}"
        staging.write_bytes(content)
        try:
            return await asyncio.to_thread(self._write_first, dataset_id,
                                           lambda part: _ray_import(staging, suffix, part, self.config.num_cpus))
        finally:
            staging.unlink(missing_ok=True)

    async def append_rows(self, dataset_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        folder = self._folder(dataset_id)
        async with self._locks.setdefault(dataset_id, asyncio.Lock()):
            schema = await asyncio.to_thread(_schema, folder)
            table = _table(rows, schema)
            await asyncio.to_thread(lambda: _write_table(table, _reserve_part(folder)))
            return {"num_rows": await asyncio.to_thread(_num_rows, folder), "columns": schema.names}

    async def iterrows(self, dataset_id: str, start_index: int, limit: int | None) -> dict[str, Any]:
        limit = min(limit or self.config.max_page_rows, self.config.max_page_rows)
        rows, total = await asyncio.to_thread(_read_rows, self._folder(dataset_id), start_index, limit)
        return {"data": rows, "has_more": start_index + len(rows) < total}

    async def location(self, dataset_id: str) -> str:
        """The dataset's folder, for Ray Data readers on any node (`ray.data.read_parquet`)."""
        return str(self._folder(dataset_id))

    async def delete(self, dataset_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.root / dataset_id, True)

    async def shutdown(self) -> None:
        pass

    def _folder(self, dataset_id: str) -> Path:
        folder = self.root / dataset_id
        if not folder.is_dir():
            raise NotFoundError(f"Dataset '{dataset_id}' has no rows stored", param="dataset_id")
        return folder

    def _write_first(self, dataset_id: str, write) -> dict[str, Any]:
        folder = self.root / dataset_id
        shutil.rmtree(folder, ignore_errors=True)  # what a failed registration of this id left
        folder.mkdir(parents=True)
        try:
            write(_reserve_part(folder))
            schema = _schema(folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return {"num_rows": _num_rows(folder), "columns": schema.names}

    def _reader(self, uri: str, metadata: dict[str, Any]):
        if uri.startswith("hf://"):
            name = uri[len("hf://"):]
            if not name.startswith(("/", "~")) and not (_HUB_ID.fullmatch(name) and ".." not in name):
                raise InvalidRequestError("source.uri: hf:// names a dataset as 'org/name' (or an absolute folder "
                                          "under allowed_paths)", param="source.uri")
            return lambda part: _hf_import(name, metadata, part, self._local, self.config.num_cpus)
        path = self._local(urlparse(uri).path if uri.startswith("file://") else uri)
        if not path.exists():
            raise InvalidRequestError(f"source.uri: no file or folder at '{path}'", param="source.uri")
        suffix = "dir" if path.is_dir() else _format(path.name)
        return lambda part: _ray_import(path, suffix, part, self.config.num_cpus)

    def _local(self, path: str) -> Path:
        resolved = Path(path).expanduser().resolve()
        if resolved.is_relative_to(self.root) or not any(resolved.is_relative_to(root) for root in self.allowed):
            roots = ", ".join(map(str, self.allowed)) or "none"
            raise InvalidRequestError(f"source.uri: '{path}' is not under the provider's allowed_paths ({roots})",
                                      param="source.uri")
        return resolved


def _format(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in (".jsonl", ".json", ".csv", ".parquet"):
        raise InvalidRequestError(f"source.uri: '{name}' is not JSONL, JSON, CSV or Parquet", param="source.uri")
    return suffix


def _table(rows: list[dict[str, Any]], schema: pa.Schema | None) -> pa.Table:
    """Rows as an Arrow table, typed as the dataset's existing rows when there are some."""
    if schema is not None:
        for i, row in enumerate(rows):
            extra = sorted(set(row) - set(schema.names))
            if extra:
                raise InvalidRequestError(f"rows.{i}.{extra[0]}: not a column of the dataset (columns: "
                                          f"{', '.join(schema.names)})", param=f"rows.{i}.{extra[0]}")
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise InvalidRequestError(f"rows: the rows do not fit one table: {exc}", param="rows") from None


def _reserve_part(folder: Path) -> Path:
    """A new, empty part folder; mkdir is atomic, so concurrent writers each get their own."""
    taken = [int(p.name.split("-")[1]) for p in folder.glob("part-*")]
    number = max(taken, default=-1) + 1
    while True:
        part = folder / _PART.format(number)
        try:
            part.mkdir()
            return part
        except FileExistsError:
            number += 1


def _write_table(table: pa.Table, part: Path) -> None:
    staging = part / ".rows.parquet"
    pq.write_table(table, staging)
    os.replace(staging, part / "rows.parquet")


def _schema(folder: Path) -> pa.Schema:
    files = dataset_files(folder)
    if not files:
        raise InvalidRequestError("source: the source holds no rows", param="source")
    return pq.read_schema(files[0])


def _num_rows(folder: Path) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in dataset_files(folder))


def _read_rows(folder: Path, start: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Rows [start, start + limit) and the dataset's row count, reading only the files they span."""
    rows: list[dict[str, Any]] = []
    offset = 0
    for path in dataset_files(folder):
        parquet = pq.ParquetFile(path)
        count = parquet.metadata.num_rows
        if len(rows) < limit and offset + count > start:
            skip = max(0, start - offset)
            for batch in parquet.iter_batches(batch_size=1024):
                if skip >= batch.num_rows:
                    skip -= batch.num_rows
                    continue
                rows.extend(batch.slice(skip, limit - len(rows)).to_pylist())
                skip = 0
                if len(rows) >= limit:
                    break
        offset += count
    return rows, offset


def _ray_import(path: Path, suffix: str, part: Path, num_cpus: float) -> None:
    try:
        if suffix == "dir":
            dataset = _read_folder(path, num_cpus)
        else:
            dataset = read_files([(str(path), suffix)], num_cpus)
        _write_ray(dataset, part, num_cpus)
    except InvalidRequestError:
        raise
    except Exception as exc:  # a malformed file: the reader names what it could not parse
        raise InvalidRequestError(f"source: could not read '{path.name}' as {suffix.lstrip('.')}: "
                                  f"{_reason(exc)}", param="source") from None


def _read_folder(path: Path, num_cpus: float):
    """A `datasets` save_to_disk folder, else a folder of Parquet files."""
    import ray.data

    if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
        import datasets

        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            loaded = loaded["train"] if "train" in loaded else next(iter(loaded.values()))
        return ray.data.from_arrow(loaded.data.table)
    return read_files([(str(f), ".parquet") for f in sorted(path.rglob("*.parquet"))], num_cpus)


def _hf_import(name: str, metadata: dict[str, Any], part: Path, local, num_cpus: float) -> None:
    """`hf://<path>` is a `datasets` folder (under allowed_paths); `hf://<org>/<name>` is read from the
    `datasets` cache (split `metadata.split`, default train): the hub is never asked."""
    import ray.data

    if name.startswith(("/", "~")):
        return _write_ray(_read_folder(local(name), num_cpus), part, num_cpus)
    import datasets

    try:
        loaded = datasets.load_dataset(name, split=metadata.get("split", "train"), download_mode="reuse_cache_if_exists")
    except Exception as exc:
        raise InvalidRequestError(f"source.uri: dataset '{name}' is not in the local datasets cache ({_reason(exc)})",
                                  param="source.uri") from None
    _write_ray(ray.data.from_arrow(loaded.data.table), part, num_cpus)


def _write_ray(dataset, part: Path, num_cpus: float) -> None:
    dataset.context.execution_options.preserve_order = True
    dataset.context.enable_progress_bars = False
    dataset.write_parquet(str(part), ray_remote_args={"num_cpus": num_cpus})


def _reason(exc: Exception) -> str:
    """The kind of error a reader raised, never its text: a parse error quotes the file's rows."""
    inner = re.findall(r"^(\w*(?:Error|Exception|Invalid)): ", str(exc), re.MULTILINE)
    return inner[-1] if inner else type(exc).__name__
