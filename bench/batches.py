"""Interactive chat latency while a batch runs on the same vLLM engine, with the engine scheduling
first come first served and by priority (batches' requests at `batches.priority`, interactive at 0);
and the batch's throughput against the same requests sent by concurrent clients.

    python -m bench.batches [--lines 64] [--max-tokens 32] [--probe-tokens 16] [--alone 30]
                            [--batch-size 8] [--concurrency 3] [--clients 16] [--rounds 3]
                            [--cores 0,1] [--plot PATH]

raystack starts as `serve run graphs.builder:build config=...` with one `inline::vllm` SmolLM2
engine, the files and batches APIs, once per policy. One client asks `--probe-tokens`-token chats
one after another: for `--alone` seconds with nothing else running, then while a batch of
`--lines` chats of `--max-tokens` tokens runs (`--batch-size` requests per Ray Data task,
`--concurrency` tasks). Prints the interactive p50/p90 alone and during the batch, and the batch's
requests and completion tokens per second. Then, on the engine that schedules by priority and
with nothing else running, the same batch again and the same lines sent as `--clients` concurrent
clients to /v1/chat/completions, alternating for `--rounds` rounds: their median requests per
second and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.engine import CONTEXT, KV_CACHE_BYTES, raystack_server
from bench.peers import RAYSTACK_PORT, Server, port_is_free, running
from providers.inline.vllm.local_models import SMOLLM2

POLICIES = ("fcfs", "priority")


@dataclass
class Run:
    alone_ms: list[float]
    during_ms: list[float]
    batch_s: float
    batch_tokens: int
    lines: int


def run_config(policy: str, batch_size: int, concurrency: int):
    def config(_: str, state: Path) -> dict[str, Any]:
        engine = {"provider_id": "vllm", "provider_type": "inline::vllm", "config": {"model": SMOLLM2, "engine_args": {
            "kv_cache_memory_bytes": KV_CACHE_BYTES, "max_model_len": CONTEXT, "scheduling_policy": policy}}}
        return {
            "apis": ["inference", "models", "files", "batches"],
            "providers": {"inference": [engine], "files": [{"provider_id": "localfs", "provider_type": "inline::localfs",
                                                            "config": {"storage_dir": str(state / "files")}}]},
            "registered_resources": {"models": [{"model_id": SMOLLM2, "provider_id": "vllm"}]},
            "batches": {"batch_size": batch_size, "concurrency": concurrency},
            "storage": {"backends": {"kv": {"type": "kv_sqlite", "db_path": str(state / "kv.db")},
                                     "sql": {"type": "sql_sqlite", "db_path": str(state / "sql.db")}},
                        "stores": {"metadata": {"backend": "kv", "namespace": "registry"},
                                   "files": {"backend": "sql", "table_name": "files"},
                                   "jobs": {"backend": "sql", "table_name": "jobs"}}},
        }
    return config


def probe(http: httpx.Client, tokens: int) -> float:
    """One interactive chat's latency in ms."""
    started = time.perf_counter()
    http.post("/chat/completions", json={"model": SMOLLM2, "max_tokens": tokens, "ignore_eos": True,
                                         "messages": [{"role": "user", "content": "Name a colour."}]}).raise_for_status()
    return (time.perf_counter() - started) * 1000


def chat_bodies(lines: int, tokens: int) -> list[dict[str, Any]]:
    return [{"model": SMOLLM2, "max_tokens": tokens, "ignore_eos": True,
             "messages": [{"role": "user", "content": f"Write about the number {i}."}]} for i in range(lines)]


def batch_file(http: httpx.Client, lines: int, tokens: int) -> str:
    requests = [{"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
                for i, body in enumerate(chat_bodies(lines, tokens))]
    content = "\n".join(json.dumps(r) for r in requests).encode()
    return http.post("/files", files={"file": ("requests.jsonl", content)}, data={"purpose": "batch"}).json()["id"]


def batch_seconds(http: httpx.Client, lines: int, tokens: int) -> float:
    """A batch's time from its creation to its end, with nothing else running."""
    file_id = batch_file(http, lines, tokens)
    started = time.monotonic()
    batch = http.post("/batches", json={"input_file_id": file_id, "endpoint": "/v1/chat/completions",
                                        "completion_window": "24h"}).json()
    while batch["status"] not in ("completed", "failed", "cancelled", "expired"):
        time.sleep(0.2)
        batch = http.get(f"/batches/{batch['id']}").json()
    assert batch["request_counts"]["completed"] == lines, batch
    return time.monotonic() - started


def clients_seconds(base_url: str, lines: int, tokens: int, clients: int) -> float:
    """The same requests sent by `clients` concurrent clients, each one after another."""
    bodies = chat_bodies(lines, tokens)
    with httpx.Client(base_url=base_url, timeout=600, limits=httpx.Limits(max_connections=clients)) as http, \
            ThreadPoolExecutor(clients) as pool:
        started = time.monotonic()
        for reply in pool.map(lambda body: http.post("/chat/completions", json=body), bodies):
            reply.raise_for_status()
        return time.monotonic() - started


def measure(server: Server, args: argparse.Namespace) -> Run:
    with httpx.Client(base_url=server.base_url, timeout=600) as http:
        probe(http, args.probe_tokens)
        alone: list[float] = []
        deadline = time.monotonic() + args.alone
        while time.monotonic() < deadline:
            alone.append(probe(http, args.probe_tokens))
        file_id = batch_file(http, args.lines, args.max_tokens)
        started = time.monotonic()
        batch = http.post("/batches", json={"input_file_id": file_id, "endpoint": "/v1/chat/completions",
                                            "completion_window": "24h"}).json()
        during: list[float] = []
        while batch["status"] not in ("completed", "failed", "cancelled", "expired"):
            if batch["status"] == "in_progress" and batch["request_counts"]["completed"]:
                during.append(probe(http, args.probe_tokens))  # once the batch's first block is answered
            else:
                time.sleep(0.2)
            batch = http.get(f"/batches/{batch['id']}").json()
        elapsed = time.monotonic() - started
        output = http.get(f"/files/{batch['output_file_id']}/content").text.splitlines()
        tokens = sum(json.loads(line)["response"]["body"]["usage"]["completion_tokens"] for line in output)
    return Run(alone, during, elapsed, tokens, len(output))


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else (values or [float("nan")])[0]


def print_table(runs: dict[str, Run]) -> None:
    print(f"\n{'policy':10}{'alone p50':>11}{'p90':>8}{'batch p50':>11}{'p90':>8}{'x alone':>9}{'probes':>8}"
          f"{'batch s':>9}{'req/s':>7}{'tok/s':>7}")
    for policy, run in runs.items():
        alone, during = statistics.median(run.alone_ms), statistics.median(run.during_ms or [float("nan")])
        print(f"{policy:10}{alone:>11.0f}{percentile(run.alone_ms, 90):>8.0f}{during:>11.0f}"
              f"{percentile(run.during_ms, 90):>8.0f}{during / alone:>8.2f}x{len(run.during_ms):>8}"
              f"{run.batch_s:>9.1f}{run.lines / run.batch_s:>7.2f}{run.batch_tokens / run.batch_s:>7.1f}")


def plot(runs: dict[str, Run], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = list(runs)
    width = 0.35
    for offset, (label, pick) in enumerate((("alone", lambda r: r.alone_ms), ("during a batch", lambda r: r.during_ms))):
        ax.bar([i + offset * width for i in range(len(names))], [statistics.median(pick(runs[n]) or [0]) for n in names],
               width, label=label)
    labels = {"fcfs": "first come first served", "priority": "priority, batches gated"}
    ax.set_xticks([i + width / 2 for i in range(len(names))], [labels[n] for n in names])
    ax.set_ylabel("interactive chat p50 (ms)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def throughput(server: Server, args: argparse.Namespace) -> tuple[float, float]:
    """Median seconds for the batch and for the same requests as concurrent clients, over
    `--rounds` rounds that alternate the two (the box drifts)."""
    batch, clients = [], []
    with httpx.Client(base_url=server.base_url, timeout=600) as http:
        for _ in range(args.rounds):
            batch.append(batch_seconds(http, args.lines, args.max_tokens))
            clients.append(clients_seconds(server.base_url, args.lines, args.max_tokens, args.clients))
            print(f"throughput round: batch {batch[-1]:.1f} s, clients {clients[-1]:.1f} s", flush=True)
    return statistics.median(batch), statistics.median(clients)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--probe-tokens", type=int, default=16)
    parser.add_argument("--alone", type=float, default=30.0, help="seconds of interactive chats before the batch")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="alternating batch and clients rounds")
    parser.add_argument("--cores", default="0,1", help="the server's cores, as taskset takes them")
    parser.add_argument("--plot", metavar="PATH")
    args = parser.parse_args(argv)
    if not port_is_free(RAYSTACK_PORT):
        raise SystemExit(f"port {RAYSTACK_PORT} is taken; `serve run` serves there: stop what holds it")
    runs: dict[str, Run] = {}
    for policy in POLICIES:
        server = raystack_server()
        server = Server(**{**server.__dict__, "run_config": run_config(policy, args.batch_size, args.concurrency)})
        with running(server, "", args.cores):
            runs[policy] = measure(server, args)
            print(f"{policy}: {len(runs[policy].alone_ms)} probes alone, {len(runs[policy].during_ms)} during the "
                  "batch", flush=True)
            if policy == "priority":
                batch_s, clients_s = throughput(server, args)
    print_table(runs)
    print(f"\n{args.lines} lines alone, medians of {args.rounds} rounds: as a batch {args.lines / batch_s:.2f} req/s ({batch_s:.1f} s), as "
          f"{args.clients} concurrent clients {args.lines / clients_s:.2f} req/s ({clients_s:.1f} s): "
          f"batch/clients {clients_s / batch_s:.2f}x")
    if args.plot:
        plot(runs, args.plot)


if __name__ == "__main__":
    main()
