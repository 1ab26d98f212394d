"""Milvus as the vector store: insert throughput, search QPS and recall@10 against exact search.

    python -m bench.vector_io [--chunks 100000] [--dim 384] [--queries 200] [--data clustered|random]
                              [--index HNSW|IVF_FLAT|FLAT] [--ef 32 64 128 256 512 2048] [--concurrency 8]
                              [--batch 1000] [--plot PATH]

Inserts `--chunks` vectors (with a short text each, so the BM25 field is fed as in real use)
through the inline::milvus provider in batches of `--batch` (each insert is flushed), waits for milvus-lite's background index
build, then searches `--queries` vectors at each search breadth (HNSW `ef`, or IVF `nprobe` for
IVF_FLAT), `--concurrency` searches in flight at a time, as a vector_io replica serves them, and
compares the top 10 with exact cosine top 10 from numpy. QPS is queries answered per second of wall
time; p50 the latency of one search under that concurrency. `clustered`
data (Gaussian clusters, like real embeddings) is the default; `random` uniform directions are
ANN's worst case.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from providers.api.vector_io import Chunk
from providers.inline.milvus import InlineMilvusConfig, create_provider
from providers.remote.milvus.config import MilvusIndexConfig

STORE = "vs_bench"


@dataclass(frozen=True)
class SearchResult:
    breadth: int
    recall: float
    qps: float
    p50_ms: float


def make_data(kind: str, n: int, dim: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "random":
        vectors, probes = rng.normal(size=(n, dim)), rng.normal(size=(queries, dim))
    else:
        centers = rng.normal(size=(max(n // 100, 1), dim))
        vectors = centers[rng.integers(len(centers), size=n)] + 0.35 * rng.normal(size=(n, dim))
        probes = centers[rng.integers(len(centers), size=queries)] + 0.35 * rng.normal(size=(queries, dim))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    probes = (probes / np.linalg.norm(probes, axis=1, keepdims=True)).astype(np.float32)
    return vectors, probes


def exact_top10(vectors: np.ndarray, probes: np.ndarray) -> list[set[str]]:
    scores = probes @ vectors.T
    return [set(map(str, np.argpartition(-row, 10)[:10])) for row in scores]


def wait_for_index(db_path: str) -> None:
    """milvus-lite builds indexes in the background after a flush and searches by brute force
    until then; this waits on its private hook, for measurement only."""
    import os

    from milvus_lite import server_manager_instance

    entry = server_manager_instance._servers.get(os.path.abspath(db_path))
    if entry is None or not hasattr(entry[1], "get_collection"):
        print("  (cannot wait for the index build on this milvus-lite; figures may be brute force)")
        return
    entry[1].get_collection(STORE)._wait_for_bg()


async def run(args: argparse.Namespace, db_path: str) -> tuple[float, float, list[SearchResult]]:
    vectors, probes = make_data(args.data, args.chunks, args.dim, args.queries)
    truth = exact_top10(vectors, probes)
    index = MilvusIndexConfig(index_type=args.index)
    milvus = create_provider(InlineMilvusConfig(db_path=db_path, index=index))
    await milvus.create_store(STORE, args.dim)
    started = time.perf_counter()
    for start in range(0, args.chunks, args.batch):
        batch = vectors[start:start + args.batch]
        await milvus.insert(STORE, [Chunk(id=str(start + i), file_id=f"file-{(start + i) // 50}", text=f"chunk {start + i}",
                                          embedding=v.tolist()) for i, v in enumerate(batch)])
        await milvus.flush(STORE)
    insert_s = time.perf_counter() - started
    started = time.perf_counter()
    await asyncio.to_thread(wait_for_index, db_path)
    build_s = time.perf_counter() - started
    results = []
    for breadth in (args.ef if args.index != "FLAT" else [0]):
        milvus.index = index.model_copy(update={"hnsw_ef": max(breadth, 10), "ivf_nprobe": max(breadth, 1)})
        latencies: list[float] = []
        hits = 0
        todo = iter(zip(probes, truth, strict=True))

        async def searcher() -> None:
            nonlocal hits
            for probe, expected in todo:
                sent = time.perf_counter()
                found = await milvus.search(STORE, embedding=probe.tolist(), text=None, mode="vector", limit=10, filters=None)
                latencies.append(time.perf_counter() - sent)
                hits += len({h.id for h in found} & expected)

        started = time.perf_counter()
        await asyncio.gather(*(searcher() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - started
        results.append(SearchResult(breadth, hits / (10 * len(probes)), len(latencies) / elapsed,
                                    1000 * float(np.median(latencies))))
    await milvus.shutdown()
    return args.chunks / insert_s, build_s, results


def plot(results: list[SearchResult], path: str, title: str, concurrency: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([r.qps for r in results], [r.recall for r in results], marker="o")
    for r in results:
        ax.annotate(str(r.breadth), (r.qps, r.recall), textcoords="offset points", xytext=(4, 4))
    ax.axhline(0.95, color="gray", linestyle="--", linewidth=1)
    ax.set_xlabel(f"queries per second ({concurrency} in flight)")
    ax.set_ylabel("recall@10")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--data", choices=["clustered", "random"], default="clustered")
    parser.add_argument("--index", choices=["HNSW", "IVF_FLAT", "FLAT"], default="HNSW")
    parser.add_argument("--ef", type=int, nargs="+", default=[32, 64, 128, 256, 512, 2048],
                        help="search breadths: HNSW ef, or nprobe for IVF_FLAT")
    parser.add_argument("--concurrency", type=int, default=8, help="searches in flight at a time")
    parser.add_argument("--batch", type=int, default=1000, help="chunks per insert (each insert is flushed)")
    parser.add_argument("--plot", metavar="PATH")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="raystack-bench-milvus-") as workdir:
        insert_rate, build_s, results = asyncio.run(run(args, f"{workdir}/bench.db"))
    print(f"{args.chunks} chunks x {args.dim} dims ({args.data}), {args.index}: insert {insert_rate:.0f} chunks/s "
          f"(batches of {args.batch}, flushed), index build after the last flush {build_s:.1f} s")
    print(f"{'breadth':>8}{'recall@10':>11}{'QPS':>8}{'p50 ms':>9}   ({args.concurrency} searches in flight)")
    for r in results:
        print(f"{r.breadth:>8}{r.recall:>11.3f}{r.qps:>8.1f}{r.p50_ms:>9.1f}")
    if args.plot:
        plot(results, args.plot, f"{args.index}, {args.chunks} x {args.dim} ({args.data})", args.concurrency)


if __name__ == "__main__":
    main()
