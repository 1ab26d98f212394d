"""Bulk ingestion: a file batch through the Ray Data pipeline, at several pipeline concurrencies.

    python -m bench.ingest [--files 40] [--words 6000] [--embedder mock|minilm] [--embedding-delay 0.1]
                           [--concurrency 1 2 4] [--batch-size 64] [--plot PATH]

Starts a local Ray and, for each `--concurrency`, a graph whose ingestion pipeline runs that many
tasks per stage; uploads `--files` text files of `--words` words, attaches them as one file batch
with static 200-token chunks, and polls the batch's `file_counts` until it is done, printing the
progress as it goes. `mock` embeds through the loopback OpenAI mock answering each call after
`--embedding-delay` seconds (a remote embedding service); `minilm` through the starter graph's
sentence-transformers deployment on this machine's CPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.gateway import free_port, set_serve_environment, start_mock_process

CHUNK_TOKENS = 200
WORDS_PER_CHUNK = int(CHUNK_TOKENS * 0.75)


@dataclass
class IngestRun:
    concurrency: int
    files: int
    chunks: int
    seconds: float = 0.0
    progress: list[tuple[float, int]] = field(default_factory=list)  # (seconds, files completed)
    failed: int = 0

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds


def run_config(embedder: str, mock_url: str | None, workdir: str, concurrency: int, batch_size: int) -> dict[str, Any]:
    if embedder == "mock":
        provider = {"provider_id": "mock", "provider_type": "remote::openai", "config": {"base_url": mock_url}}
        model = {"model_id": "embedder", "provider_id": "mock", "provider_model_id": "mock-model",
                 "model_type": "embedding", "metadata": {"embedding_dimension": 8}}
    else:
        provider = {"provider_id": "sentence-transformers", "provider_type": "inline::sentence-transformers", "config": {}}
        model = {"model_id": "embedder", "provider_id": "sentence-transformers", "provider_model_id": "all-MiniLM-L6-v2",
                 "model_type": "embedding", "metadata": {"embedding_dimension": 384, "context_length": 256}}
    return {
        "apis": ["inference", "models", "files", "vector_io"],
        "providers": {
            "inference": [provider],
            "files": [{"provider_id": "localfs", "provider_type": "inline::localfs",
                       "config": {"storage_dir": f"{workdir}/files-{concurrency}"}}],
            "vector_io": [{"provider_id": "milvus", "provider_type": "inline::milvus",
                           "config": {"db_path": f"{workdir}/milvus-{concurrency}.db"}}],
        },
        "registered_resources": {"models": [model]},
        "storage": {"backends": {"kv": {"type": "kv_sqlite", "db_path": f"{workdir}/kv-{concurrency}.db"},
                                 "sql": {"type": "sql_sqlite", "db_path": f"{workdir}/sql-{concurrency}.db"}},
                    "stores": {"metadata": {"backend": "kv", "namespace": "registry"},
                               "files": {"backend": "sql", "table_name": "files"},
                               "vector_stores": {"backend": "sql", "table_name": "vector_stores"}}},
        "vector_stores": {"ingestion": {"concurrency": concurrency, "embedding_batch_size": batch_size}},
    }


def measure(args: argparse.Namespace, mock_url: str | None, port: int, workdir: str, concurrency: int) -> IngestRun:
    from ray import serve

    from graphs.builder import build_app
    from providers.run_config import parse_run_config

    config = parse_run_config(run_config(args.embedder, mock_url, workdir, concurrency, args.batch_size), "bench.ingest")
    serve.run(build_app(config), name="raystack", route_prefix="/")
    chunks_per_file = -(-args.words // WORDS_PER_CHUNK)
    run = IngestRun(concurrency, args.files, args.files * chunks_per_file)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", timeout=60) as http:
        text = " ".join(f"word{n}" for n in range(args.words))
        file_ids = [http.post("/files", files={"file": (f"doc{i}.txt", f"doc {i} {text}".encode())},
                              data={"purpose": "assistants"}).json()["id"] for i in range(args.files)]
        store = http.post("/vector_stores", json={"name": "bench"}).json()["id"]
        strategy = {"type": "static", "static": {"max_chunk_size_tokens": CHUNK_TOKENS, "chunk_overlap_tokens": 0}}
        started = time.perf_counter()
        batch = http.post(f"/vector_stores/{store}/file_batches", json={"file_ids": file_ids, "chunking_strategy": strategy}).json()
        while True:
            time.sleep(0.25)
            batch = http.get(f"/vector_stores/{store}/file_batches/{batch['id']}").json()
            elapsed = time.perf_counter() - started
            counts = batch["file_counts"]
            if not run.progress or run.progress[-1][1] != counts["completed"]:
                run.progress.append((elapsed, counts["completed"]))
                print(f"  concurrency {concurrency}: {elapsed:6.1f} s  {counts['completed']}/{counts['total']} files", flush=True)
            if batch["status"] != "in_progress":
                break
        run.seconds = time.perf_counter() - started
        run.failed = counts["failed"]
    serve.delete("raystack")
    return run


def report(runs: list[IngestRun], args: argparse.Namespace) -> None:
    print(f"\n{args.files} files x {args.words} words ({runs[0].chunks} chunks of {CHUNK_TOKENS} tokens), "
          f"embedder {args.embedder}, {args.batch_size} chunks per embedding call")
    print(f"{'concurrency':>12}{'seconds':>10}{'files/s':>10}{'chunks/s':>10}{'failed':>8}")
    for run in runs:
        print(f"{run.concurrency:12}{run.seconds:10.1f}{run.files / run.seconds:10.2f}{run.chunks_per_s:10.1f}{run.failed:8}")


def plot(runs: list[IngestRun], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for run in runs:
        ax.step([0] + [t for t, _ in run.progress], [0] + [n for _, n in run.progress], where="post",
                label=f"concurrency {run.concurrency}: {run.chunks_per_s:.0f} chunks/s")
    ax.set_xlabel("seconds since the batch was created")
    ax.set_ylabel("files completed")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--words", type=int, default=6000)
    parser.add_argument("--embedder", choices=["mock", "minilm"], default="mock")
    parser.add_argument("--embedding-delay", type=float, default=0.1, help="mock: seconds per embedding call")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batch-size", type=int, default=64, help="chunks per embedding call")
    parser.add_argument("--plot", metavar="PATH")
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="raystack-bench-ingest-"))
        mock_url = None
        if args.embedder == "mock":
            mock_url = start_mock_process(chunks=1, chunk_delay_s=0.0, stack=stack, embedding_delay_s=args.embedding_delay).base_url
        set_serve_environment(serve_defaults=False)
        import ray
        from ray import serve

        ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024**2)
        stack.callback(ray.shutdown)
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        runs = [measure(args, mock_url, port, workdir, concurrency) for concurrency in args.concurrency]
    report(runs, args)
    if args.plot:
        plot(runs, args.plot, f"ingesting {args.files} files ({args.embedder} embedder)")


if __name__ == "__main__":
    main()
