"""The inference store under load: no failed writes, no lost records, and what storing costs.

    python -m bench.store [--concurrency 50] [--duration 60]
                          [--backends sqlite sqlite+outbox postgres postgres+outbox] [--stream]
                          [--rounds 1] [--postgres-db test] [--plot PATH]

Starts the loopback mock and a local Ray, then runs the same closed-loop load through a graph with
two ingress replicas: the store off, then on each backend (`+outbox`: with the crash-safe outbox);
`--rounds` repeats the three in turn (run-to-run noise on a small machine is ~10% of RPS).
After each run with the store on, the graph is deleted (its replicas write out their queues as they
stop) and the rows of the run's own table are counted against the 200 responses the clients saw.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from bench.gateway import MODEL, ray_server_pids, start_mock_process, start_serve, wait_until_answering
from bench.load import LoadResult, LoadSpec, run_load_in_process

POSTGRES = {"type": "sql_postgres", "host": "127.0.0.1", "port": 5432, "user": "postgres"}


@dataclass(frozen=True)
class StoreRun:
    label: str
    load: LoadResult
    rows: int | None  # None with the store off

    @property
    def lost(self) -> int | None:
        return None if self.rows is None else self.load.ok_total - self.rows


def run_config(mock_url: str, workdir: str, backend: str | None, table: str, postgres_db: str) -> dict[str, Any]:
    backends: dict[str, Any] = {"kv": {"type": "kv_sqlite", "db_path": f"{workdir}/kv.db"}}
    stores: dict[str, Any] = {"metadata": {"backend": "kv", "namespace": "registry"}}
    if backend is not None:
        database, _, outbox = backend.partition("+")
        backends["sql"] = {"type": "sql_sqlite", "db_path": f"{workdir}/sql.db"} if database == "sqlite" else {**POSTGRES, "db": postgres_db}
        stores["inference"] = {"backend": "sql", "table_name": table, **({"outbox_dir": f"{workdir}/outbox"} if outbox else {})}
    return {
        "apis": ["inference", "models"],
        "providers": {"inference": [{"provider_id": "mock", "provider_type": "remote::openai", "config": {"base_url": mock_url}}]},
        "registered_resources": {"models": [{"model_id": MODEL, "provider_id": "mock"}]},
        "storage": {"backends": backends, "stores": stores},
        "server": {"ingress": {"num_replicas": 2}},
    }


async def count_and_drop(storage_config, table: str) -> int:
    from sqlalchemy import func, select

    from providers.access import AccessPolicy
    from providers.storage import Storage
    from providers.storage.inference_store import InferenceStore

    storage = Storage(storage_config)
    engine, _ = storage.sql("inference")
    rows_table = InferenceStore(engine, storage_config.stores["inference"], AccessPolicy()).table
    async with engine.begin() as conn:
        rows = (await conn.execute(select(func.count()).select_from(rows_table))).scalar_one()
        await conn.run_sync(rows_table.metadata.drop_all)
    await storage.close()
    return rows


def measure(label: str, backend: str | None, mock_url: str, port: int, args: argparse.Namespace, workdir: str) -> StoreRun:
    from ray import serve

    from graphs.builder import build_app
    from providers.run_config import parse_run_config

    table = f"bench_completions_{uuid.uuid4().hex[:8]}"
    config = parse_run_config(run_config(mock_url, workdir, backend, table, args.postgres_db), "bench.store")
    serve.run(build_app(config), name="raystack", route_prefix="/")
    base_url = f"http://127.0.0.1:{port}/v1"
    wait_until_answering(base_url)
    spec = LoadSpec(base_url, MODEL, args.concurrency, args.duration, args.stream, args.warmup, ray_server_pids())
    load = run_load_in_process(spec)
    serve.delete("raystack")  # ingress replicas flush their write queues as they stop
    rows = None if backend is None else asyncio.run(count_and_drop(config.storage, table))
    return StoreRun(label, load, rows)


def report(runs: list[StoreRun]) -> None:
    print(f"\n{'run':22}{'RPS':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>12}{'200s':>8}{'errors':>8}{'rows':>8}{'lost':>6}")
    for run in runs:
        load = run.load
        print(f"{run.label:22}{load.rps:9.1f}{load.latency_ms.p50:9.1f}{load.latency_ms.p99:9.1f}"
              f"{load.cpu_ms_per_request:12.2f}{load.ok_total:8}{sum(load.errors.values()):8}"
              f"{'-' if run.rows is None else run.rows:>8}{'-' if run.lost is None else run.lost:>6}")
        for kind, n in load.errors.items():
            print(f"    error {kind} x{n}")


def plot(runs: list[StoreRun], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
    labels = [r.label for r in runs]
    for ax, (name, values) in zip(axes, [("RPS", [r.load.rps for r in runs]), ("p99 ms", [r.load.latency_ms.p99 for r in runs])]):
        ax.bar(labels, values, color="tab:blue")
        ax.bar_label(ax.containers[0], fmt="%.1f")
        ax.set_title(name)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--backends", nargs="+", choices=["sqlite", "sqlite+outbox", "postgres", "postgres+outbox"],
                        default=["sqlite", "sqlite+outbox", "postgres", "postgres+outbox"])
    parser.add_argument("--postgres-db", default="test")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--plot", metavar="PATH")
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="raystack-bench-store-"))
        mock = start_mock_process(chunks=8, chunk_delay_s=0.0, stack=stack)
        port = start_serve(serve_defaults=False, stack=stack)
        mode = "streaming" if args.stream else "non-streaming"
        print(f"{mode}, {args.concurrency} clients, {args.duration:g} s per run, two ingress replicas")
        runs = []
        for round_no in range(1, args.rounds + 1):
            for label, backend in [("store off", None)] + [(f"store {b}", b) for b in args.backends]:
                label = label if args.rounds == 1 else f"{round_no} {label}"
                runs.append(measure(label, backend, mock.base_url, port, args, workdir))
                print(f"{label}: {runs[-1].load.ok_total} responses, rows {runs[-1].rows}", flush=True)
    report(runs)
    if args.plot:
        plot(runs, args.plot, f"inference store, {mode}, {args.concurrency} clients")


if __name__ == "__main__":
    main()
