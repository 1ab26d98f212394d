"""A dataset's rows on disk, as the datasetio provider keeps them (its `location`): Parquet files
under `part-*` folders, read in order; and Ray Data readers over them and over uploaded files."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def dataset_files(folder: Path) -> list[Path]:
    return sorted(f for part in sorted(folder.glob("part-*")) for f in part.glob("*.parquet") if not f.name.startswith("."))


def read_dataset(dataset_dir: str, num_cpus: float):
    """The dataset's rows as a Ray Data dataset, in order, read by tasks that reserve `num_cpus` each."""
    return read_files([(str(f), ".parquet") for f in dataset_files(Path(dataset_dir))], num_cpus)


def read_files(files: list[tuple[str, str]], num_cpus: float):
    """(path, format) pairs as a Ray Data dataset: a task per file streams its record batches with
    pyarrow. Ray Data's own readers start with tasks of a whole CPU (file listing, Parquet size
    sampling), which the engine or the training workers may already hold on a small node."""
    import ray.data

    listing = ray.data.from_items([{"path": path, "format": kind} for path, kind in files],
                                  override_num_blocks=max(1, len(files)))
    listing.context.enable_progress_bars = False
    return listing.map_batches(_read_batches, batch_size=1, batch_format="pyarrow", num_cpus=num_cpus)


def _read_batches(listing: pa.Table):
    import pyarrow.csv as pa_csv
    import pyarrow.json as pa_json

    for path, kind in zip(listing.column("path").to_pylist(), listing.column("format").to_pylist()):
        if kind == ".parquet":
            batches = pq.ParquetFile(path).iter_batches(batch_size=8192)
        elif kind == ".jsonl":
            batches = pa_json.open_json(path)
        elif kind == ".csv":
            batches = pa_csv.open_csv(path)
        else:  # a JSON array of rows
            batches = pa.Table.from_pylist(json.loads(Path(path).read_text())).to_batches()
        for batch in batches:
            yield pa.Table.from_batches([batch])
