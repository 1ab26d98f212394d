"""A soak: hours of mixed traffic through the graph with every store on, watched for wedges, leaks
and lost records.

    python -m bench.soak [--minutes 30] [--backend sqlite|postgres] [--clients 50] [--sample-s 60]
                         [--postgres-db test] [--plot PATH]

The graph: the loopback mock behind `remote::openai`, the agents deployment, and the inference,
responses and conversations stores on SQLite or PostgreSQL (two ingress replicas, the inference
store's outbox on). Each client cycles through a chat completion, a streamed one, a stored response
and an append to its own conversation, and keeps the id of everything it got a 2xx for.

Every `--sample-s` it prints and keeps each Serve replica's RSS and open file descriptors, the
depth of each store's write queue and the requests inside each deployment's replicas (from Ray's
metrics export), and the throughput, p99 latency and errors of the interval. At the end the graph is deleted (its replicas
write out what they queued) and the rows of each store are matched against the ids answered.
Reported: wedges (any 30 s without a success), errors by kind, RSS growth per hour after the
first fifth of the run (a least-squares slope over the samples), and lost records per kind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from bench.gateway import MODEL, free_port, start_mock_process, start_serve, wait_until_answering
from bench.mock_openai import fast_loop_factory

KINDS = ("chat", "stream", "response", "conversation")
WEDGE_S = 30.0
CONVERSATION_ITEMS = 400  # a client starts a new conversation after this many appends (a conversation holds 1000)
POSTGRES = {"type": "sql_postgres", "host": "127.0.0.1", "port": 5432, "user": "postgres"}


def run_config(mock_url: str, workdir: str, backend: str, suffix: str, postgres_db: str) -> dict[str, Any]:
    sql = {"type": "sql_sqlite", "db_path": f"{workdir}/sql.db"} if backend == "sqlite" else {**POSTGRES, "db": postgres_db}
    return {
        "apis": ["inference", "models", "conversations", "responses", "agents"],
        "providers": {
            "inference": [{"provider_id": "mock", "provider_type": "remote::openai", "config": {"base_url": mock_url},
                           "deployment": {"ray_actor_options": {"num_cpus": 0.2}}}],
            "agents": [{"provider_id": "builtin", "provider_type": "inline::builtin",
                        "deployment": {"ray_actor_options": {"num_cpus": 0.2}}}],
        },
        "registered_resources": {"models": [{"model_id": MODEL, "provider_id": "mock"}]},
        "storage": {
            "backends": {"kv": {"type": "kv_sqlite", "db_path": f"{workdir}/kv.db"}, "sql": sql},
            "stores": {
                "metadata": {"backend": "kv", "namespace": "registry"},
                "inference": {"backend": "sql", "table_name": f"soak_completions_{suffix}", "outbox_dir": f"{workdir}/outbox"},
                "responses": {"backend": "sql", "table_name": f"soak_responses_{suffix}"},
                "conversations": {"backend": "sql", "table_name": f"soak_conversations_{suffix}"},
            },
        },
        "server": {"ingress": {"num_replicas": 2, "ray_actor_options": {"num_cpus": 0.2}}},
    }


# ---------------------------------------------------------------- the clients (in a process of their own)


@dataclass
class ClientLog:
    """What the clients saw: (finished at, kind, latency s, error or None) per request, and the ids answered."""
    requests: list[tuple[float, str, float, str | None]] = field(default_factory=list)
    answered: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


async def _stream_id(response: aiohttp.ClientResponse) -> str:
    completion_id = None
    async for line in response.content:
        if line.startswith(b"data: [DONE]"):
            if completion_id is None:
                raise ValueError("a stream without an id")
            return completion_id
        if line.startswith(b"data:"):
            chunk = json.loads(line[5:])
            if "error" in chunk:
                raise ValueError("error chunk")
            completion_id = chunk.get("id", completion_id)
    raise ValueError("stream ended before [DONE]")


async def _one(session: aiohttp.ClientSession, base_url: str, kind: str, conversation: str | None) -> list[str]:
    """One request of `kind`; the ids of the records it stored."""
    messages = [{"role": "user", "content": "Say hello."}]
    if kind == "chat":
        async with session.post(f"{base_url}/chat/completions", json={"model": MODEL, "messages": messages}) as r:
            r.raise_for_status()
            return [(await r.json())["id"]]
    if kind == "stream":
        async with session.post(f"{base_url}/chat/completions", json={"model": MODEL, "messages": messages, "stream": True}) as r:
            r.raise_for_status()
            return [await _stream_id(r)]
    if kind == "response":
        async with session.post(f"{base_url}/responses", json={"model": MODEL, "input": "Say hello.", "store": True}) as r:
            r.raise_for_status()
            return [(await r.json())["id"]]
    item = {"type": "message", "role": "user", "content": "one more line for the soak"}
    async with session.post(f"{base_url}/conversations/{conversation}/items", json={"items": [item]}) as r:
        r.raise_for_status()
        return [f"{conversation}/{added['id']}" for added in (await r.json())["data"]]


async def _client(session: aiohttp.ClientSession, base_url: str, end: float, log: ClientLog, offset: int) -> None:
    conversation, appended, n = None, 0, offset
    while time.time() < end:
        kind = KINDS[n % len(KINDS)]
        n += 1
        started = time.perf_counter()
        try:
            if kind == "conversation" and (conversation is None or appended >= CONVERSATION_ITEMS):
                async with session.post(f"{base_url}/conversations", json={}) as r:
                    r.raise_for_status()
                    conversation, appended = (await r.json())["id"], 0
            ids = await _one(session, base_url, kind, conversation)
            appended += kind == "conversation"
            log.answered[kind].extend(ids)
            error = None
        except aiohttp.ClientResponseError as exc:
            error = f"HTTP {exc.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError) as exc:
            error = type(exc).__name__
        log.requests.append((time.time(), kind, time.perf_counter() - started, error))


async def _clients(base_url: str, clients: int, end: float) -> ClientLog:
    log = ClientLog()
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(*(_client(session, base_url, end, log, i) for i in range(clients)))
    return log


def run_clients(base_url: str, clients: int, end: float) -> tuple[list, dict[str, list[str]]]:
    with asyncio.Runner(loop_factory=fast_loop_factory()) as runner:
        log = runner.run(_clients(base_url, clients, end))
    return log.requests, dict(log.answered)


# ---------------------------------------------------------------- sampling the replicas


def serve_replicas() -> dict[str, psutil.Process]:
    """Serve's replica processes as `<deployment>[<pid>]` (a replica's title is
    `ray::ServeReplica:<app>:<deployment>`, with `.<method>` while it runs one)."""
    found = {}
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if command.startswith("ray::ServeReplica:"):
            deployment = command.split()[0].removeprefix("ray::ServeReplica:").split(":")[-1].split(".")[0]
            found[f"{deployment}[{process.pid}]"] = process
    return found


def sample_replicas(replicas: dict[str, psutil.Process]) -> dict[str, tuple[float, int]]:
    """name -> (RSS MiB, open file descriptors)."""
    sampled = {}
    for name, process in replicas.items():
        try:
            sampled[name] = (process.memory_info().rss / 2**20, process.num_fds())
        except psutil.NoSuchProcess:
            continue
    return sampled


QUEUE_METRICS = {"ray_raystack_store_queue_depth": "store", "ray_serve_replica_processing_queries": "deployment"}


def sample_queues(metrics_port: int) -> dict[str, float]:
    """Records waiting in each store's write queue (`queue:<store>`) and requests inside each
    deployment's replicas (`in:<deployment>`), summed over replicas, as Ray's metrics agent last
    exported them; empty if it did not answer."""
    try:
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).text
    except httpx.HTTPError:
        return {}
    wanted = "\n".join(line for line in text.splitlines() if line.startswith(tuple(QUEUE_METRICS)))
    found: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(wanted):
        for sample in family.samples:
            label = QUEUE_METRICS[sample.name]
            found[f"{'queue' if label == 'store' else 'in'}:{sample.labels.get(label, '?')}"] += sample.value
    return dict(found)


# ---------------------------------------------------------------- counting what was stored


async def stored_ids(storage_config, suffix: str) -> dict[str, set[str]]:
    from sqlalchemy import MetaData, Table, select

    from providers.storage import Storage

    storage = Storage(storage_config)
    engine, _ = storage.sql("inference")
    tables = {"chat": f"soak_completions_{suffix}", "response": f"soak_responses_{suffix}",
              "conversation": f"soak_conversations_{suffix}_items"}
    found = {}
    async with engine.begin() as conn:
        for kind, name in tables.items():
            table = await conn.run_sync(lambda sync, n=name: Table(n, MetaData(), autoload_with=sync))
            found[kind] = set((await conn.execute(select(table.c.id))).scalars())
            await conn.run_sync(lambda sync, t=table: t.drop(sync))
        for extra in (f"soak_conversations_{suffix}",):
            await conn.run_sync(lambda sync, n=extra: Table(n, MetaData(), autoload_with=sync).drop(sync))
    await storage.close()
    found["stream"] = found["chat"]
    return found


# ---------------------------------------------------------------- report


def p99(values: list[float]) -> float | None:
    return sorted(values)[min(len(values) - 1, int(0.99 * len(values)))] if values else None


def growth_per_hour(points: list[tuple[float, float]]) -> float | None:
    """The least-squares slope of (minutes, MiB) as a percentage of the first value per hour."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t, mean_v = sum(t for t, _ in points) / n, sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / spread if spread else 0.0
    return 100 * slope * 60 / points[0][1]


def longest_gap(requests: list, start: float, end: float) -> float:
    successes = sorted([start] + [t for t, _, _, error in requests if error is None] + [end])
    return max(b - a for a, b in zip(successes, successes[1:]))


def intervals(requests: list, start: float, sample_s: float, count: int) -> list[dict[str, Any]]:
    buckets: list[list] = [[] for _ in range(count)]
    for request in requests:
        index = int((request[0] - start) // sample_s)
        if 0 <= index < count:
            buckets[index].append(request)
    return [{"rps": sum(1 for r in b if r[3] is None) / sample_s,
             "p99_ms": (p99([r[2] for r in b if r[3] is None]) or 0) * 1000,
             "errors": sum(1 for r in b if r[3] is not None)} for b in buckets]


def plot(path: str, title: str, minutes: list[float], rss: dict[str, list[tuple[float, float]]],
         fds: dict[str, list[tuple[float, int]]], queues: dict[str, list[tuple[float, float]]],
         traffic: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 2, figsize=(11, 10), sharex=True)
    for name, points in rss.items():
        axes[0][0].plot(*zip(*points), label=name)
    for name, points in fds.items():
        axes[0][1].plot(*zip(*points))
    axes[1][0].plot(minutes, [t["rps"] for t in traffic], label="successes/s")
    axes[1][0].plot(minutes, [t["errors"] for t in traffic], label="errors", color="tab:red")
    axes[1][1].plot(minutes, [t["p99_ms"] for t in traffic])
    for name, points in queues.items():
        axes[2][0 if name.startswith("queue:") else 1].plot(*zip(*points), label=name.split(":", 1)[1])
    for ax, name in zip([a for row in axes for a in row], ["RSS MiB per replica", "open fds per replica",
                                                           "throughput", "p99 latency ms",
                                                           "records in each store's write queue",
                                                           "requests inside each deployment"]):
        ax.set_title(name)
        ax.grid(alpha=0.3)
    for ax, size in ((axes[0][0], 6), (axes[1][0], 8), (axes[2][0], 8), (axes[2][1], 8)):
        ax.legend(fontsize=size)
    for ax in axes[2]:
        ax.set_xlabel("minutes")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--sample-s", type=float, default=60.0)
    parser.add_argument("--postgres-db", default="test")
    parser.add_argument("--plot", metavar="PATH")
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="raystack-soak-"))
        mock = start_mock_process(chunks=8, chunk_delay_s=0.0, stack=stack)
        metrics_port = free_port()
        port = start_serve(serve_defaults=False, stack=stack, metrics_port=metrics_port)
        from ray import serve

        from graphs.builder import build_app
        from providers.run_config import parse_run_config

        suffix = uuid.uuid4().hex[:8]
        config = parse_run_config(run_config(mock.base_url, workdir, args.backend, suffix, args.postgres_db), "bench.soak")
        serve.run(build_app(config), name="raystack", route_prefix="/")
        base_url = f"http://127.0.0.1:{port}/v1"
        wait_until_answering(base_url)
        print(f"soak: {args.clients} clients, {args.minutes:g} min, stores on {args.backend}", flush=True)

        start = time.time()
        end = start + args.minutes * 60
        pool = stack.enter_context(ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")))
        clients = pool.submit(run_clients, base_url, args.clients, end)
        replicas = serve_replicas()
        rss: dict[str, list[tuple[float, float]]] = defaultdict(list)
        fds: dict[str, list[tuple[float, int]]] = defaultdict(list)
        queues: dict[str, list[tuple[float, float]]] = defaultdict(list)
        while time.time() < end:
            time.sleep(min(args.sample_s, max(0.0, end - time.time())))
            minute = (time.time() - start) / 60
            replicas.update(serve_replicas())
            sampled = sample_replicas(replicas)
            for name, (mib, open_fds) in sampled.items():
                rss[name].append((minute, mib))
                fds[name].append((minute, open_fds))
            depths = sample_queues(metrics_port)
            for name, depth in depths.items():
                queues[name].append((minute, depth))
            print(f"{minute:6.1f} min  " + "  ".join(f"{n} {m:.0f}MiB/{f}fd" for n, (m, f) in sorted(sampled.items())),
                  flush=True)
            print("          " + "  ".join(f"{n} {d:.0f}" for n, d in sorted(depths.items())), flush=True)
        requests, answered = clients.result()
        serve.delete("raystack")  # the ingress replicas write out their queues as they stop
        stored = asyncio.run(stored_ids(config.storage, suffix))

    count = max(1, int(args.minutes * 60 // args.sample_s))
    traffic = intervals(requests, start, args.sample_s, count)
    minutes = [(i + 1) * args.sample_s / 60 for i in range(count)]
    errors = Counter(f"{kind}: {error}" for _, kind, _, error in requests if error)
    warm = args.minutes / 5
    print(f"\n{len(requests)} requests, {sum(1 for r in requests if r[3] is None)} answered, "
          f"{sum(errors.values())} errors")
    for kind_error, n in errors.most_common():
        print(f"    {kind_error} x{n}")
    gap = longest_gap(requests, start, end)
    print(f"longest gap without a success: {gap:.1f} s; wedges (>= {WEDGE_S:g} s): {int(gap >= WEDGE_S)}")
    print(f"\n{'interval':>9}{'ok/s':>8}{'p99 ms':>9}{'errors':>8}")
    for minute, row in zip(minutes, traffic):
        print(f"{minute:8.1f}m{row['rps']:8.1f}{row['p99_ms']:9.1f}{row['errors']:8}")
    print(f"\n{'replica':32}{'RSS MiB first/last':>20}{'growth %/h':>12}{'fds first/last':>16}")
    for name, points in sorted(rss.items()):
        growth = growth_per_hour([p for p in points if p[0] >= warm])
        print(f"{name:32}{points[0][1]:9.0f}/{points[-1][1]:<10.0f}{'-' if growth is None else f'{growth:+.1f}':>12}"
              f"{fds[name][0][1]:>8}/{fds[name][-1][1]:<7}")
    print(f"\n{'records':14}{'answered':>10}{'stored':>10}{'lost':>8}")
    for kind in KINDS:
        ids = answered.get(kind, [])
        lost = len(set(ids) - stored[kind])
        print(f"{kind:14}{len(ids):10}{len(set(ids)) - lost:10}{lost:8}")
    if args.plot:
        plot(args.plot, f"soak: {args.clients} clients, {args.minutes:g} min, stores on {args.backend}",
             minutes, rss, fds, queues, traffic)


if __name__ == "__main__":
    main()
