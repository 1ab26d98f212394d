"""Gateway overhead: the mock OpenAI backend direct vs. through the raystack graph, interleaved.

    python -m bench.gateway [--concurrency 50] [--duration 20] [--rounds 3] [--stream]
                            [--chunk-delay S] [--plot PATH] [--only direct|graph] [--colocated] [--serve-defaults]

Starts the mock as a process, then (unless `--only direct`) Ray and the graph with a
`remote::openai` provider pointing at the mock, and alternates load runs direct, graph,
direct, graph... CPU per request counts the mock's process for "direct" and every Ray process
this script started (gcs_server, raylet, workers and replicas, haproxy...) for "graph"; the
graph's requests also cost the mock's CPU, which is left out. Prints medians over the rounds.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import httpx
import psutil

from bench.load import LoadResult, LoadSpec, run_load_in_process
from graphs.serve_env import FAST_SERVE_ENV, apply_fast_serve_defaults

MODEL = "mock-model"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
RAY_PROCESS_NAMES = {"raylet", "gcs_server", "haproxy"}


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str
    server_pids: tuple[int, ...]


# ---------------------------------------------------------------- the mock


def start_mock_process(chunks: int, chunk_delay_s: float, stack: ExitStack, embedding_delay_s: float = 0.0) -> Target:
    command = [sys.executable, "-m", "bench.mock_openai", "--port", "0", "--chunks", str(chunks),
               "--chunk-delay", str(chunk_delay_s), "--embedding-delay", str(embedding_delay_s)]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    stack.callback(_terminate, process)
    base_url = process.stdout.readline().strip()
    if not base_url:
        raise RuntimeError(f"the mock server exited with {process.wait()}")
    return Target("direct", base_url, (process.pid,))


def _terminate(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=10)


# ---------------------------------------------------------------- the graph


def graph_run_config(mock_url: str, workdir: str, colocated: bool = False) -> dict[str, Any]:
    remote = {"provider_id": "mock", "provider_type": "remote::openai", "config": {"base_url": mock_url}}
    if colocated:
        remote["deployment"] = {"colocate": "ingress"}
    return {
        "apis": ["inference", "models", "inspect", "providers"],
        "providers": {"inference": [remote]},
        "registered_resources": {"models": [{"model_id": MODEL, "provider_id": "mock"}]},
        "storage": {
            "backends": {"kv": {"type": "kv_sqlite", "db_path": f"{workdir}/kv.db"}},
            "stores": {"metadata": {"backend": "kv", "namespace": "registry"}},
        },
    }


def set_serve_environment(serve_defaults: bool) -> None:
    """The settings graphs.starter ships with, or Serve's own defaults."""
    if serve_defaults:
        for name in FAST_SERVE_ENV:
            os.environ.pop(name, None)
    else:
        apply_fast_serve_defaults()


def start_serve(serve_defaults: bool, stack: ExitStack, metrics_port: int | None = None) -> int:
    """A local Ray (two CPUs, a small object store; its metrics on `metrics_port` when given) and
    Serve on a free loopback port, both stopped with `stack`; returns the port."""
    set_serve_environment(serve_defaults)  # before Ray and Serve import

    import ray
    from ray import serve

    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024**2,
             _metrics_export_port=metrics_port)
    stack.callback(ray.shutdown)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    stack.callback(serve.shutdown)
    return port


def start_graph(mock_url: str, serve_defaults: bool, stack: ExitStack,
                run_config: Callable[[str, str], dict[str, Any]] = graph_run_config) -> Target:
    """Start a local Ray, deploy the graph (`run_config(mock_url, workdir)`) in front of the mock;
    returns the graph as a target."""
    workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="raystack-bench-"))
    port = start_serve(serve_defaults, stack)
    from ray import serve

    from graphs.builder import build_app
    from providers.run_config import parse_run_config

    config = parse_run_config(run_config(mock_url, workdir), "bench")
    serve.run(build_app(config), name="raystack", route_prefix="/")
    base_url = f"http://127.0.0.1:{port}/v1"
    wait_until_answering(base_url)
    return Target("graph", base_url, ray_server_pids())


def ray_server_pids() -> tuple[int, ...]:
    """The Ray processes this driver started: its descendants named like Ray's."""
    pids = []
    for process in psutil.Process().children(recursive=True):
        try:
            name, cmdline = process.name(), process.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        command = " ".join(cmdline)
        if name in RAY_PROCESS_NAMES or command.startswith("ray::") or "/site-packages/ray/" in command:
            pids.append(process.pid)
    return tuple(pids)


def wait_until_answering(base_url: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/models", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{base_url}/models did not answer 200 within {timeout_s:g} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- runs and report


COLUMNS: dict[str, Callable[[LoadResult], float | None]] = {
    "RPS": lambda r: r.rps,
    "p50 ms": lambda r: r.latency_ms and r.latency_ms.p50,
    "p90 ms": lambda r: r.latency_ms and r.latency_ms.p90,
    "p99 ms": lambda r: r.latency_ms and r.latency_ms.p99,
    "TTFT p50 ms": lambda r: r.ttft_ms and r.ttft_ms.p50,
    "CPU ms/req": lambda r: r.cpu_ms_per_request,
    "client CPU %": lambda r: 100 * r.client_cpu_s / r.elapsed_s,
}


def run_rounds(specs: dict[str, LoadSpec], rounds: int) -> dict[str, list[LoadResult]]:
    """Each spec's load once a round, in turn; the results by name."""
    results: dict[str, list[LoadResult]] = {name: [] for name in specs}
    print(_header("round"))
    for round_no in range(1, rounds + 1):
        for name, spec in specs.items():
            result = run_load_in_process(spec)
            results[name].append(result)
            print(_line(f"{round_no} {name}", [result]), flush=True)
            if result.errors:
                print("    errors: " + ", ".join(f"{kind} x{n}" for kind, n in result.errors.items()))
    return results


def median_of(results: list[LoadResult], metric: Callable[[LoadResult], float | None]) -> float | None:
    values = [v for v in map(metric, results) if v is not None]
    return statistics.median(values) if values else None


def _header(label: str) -> str:
    return f"{label:10}" + "".join(f"{c:>13}" for c in COLUMNS) + f"{'errors':>8}"


def _line(label: str, runs: list[LoadResult]) -> str:
    values = (median_of(runs, metric) for metric in COLUMNS.values())
    cells = "".join(f"{'-' if v is None else f'{v:.2f}':>13}" for v in values)
    return f"{label:10}{cells}{sum(sum(r.errors.values()) for r in runs):>8}"


def print_table(results: dict[str, list[LoadResult]]) -> None:
    print(f"\nmedians over the rounds (errors: total)\n{_header('target')}")
    for name, runs in results.items():
        print(_line(name, runs))
    if {"direct", "graph"} <= results.keys():
        ratios = []
        for column in ("RPS", "p50 ms", "CPU ms/req"):
            direct, graph = (median_of(results[n], COLUMNS[column]) for n in ("direct", "graph"))
            ratios.append(f"{column} {graph / direct:.3f}" if direct and graph is not None else f"{column} -")
        print("graph/direct: " + ", ".join(ratios))


def plot(results: dict[str, list[LoadResult]], path: str, title: str, columns: tuple[str, ...] = ("RPS", "p50 ms")) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(1, len(columns), figsize=(4 * len(columns), 3.5))
    for ax, column in zip(axes, columns):
        values = [median_of(results[n], COLUMNS[column]) or 0.0 for n in names]
        ax.bar(names, values, color=["tab:gray", "tab:blue", "tab:green"][: len(names)])
        ax.bar_label(ax.containers[0], fmt="%.1f")
        ax.set_title(column)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def load_arguments(parser: argparse.ArgumentParser) -> None:
    """The load options a round of runs takes, and --plot."""
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--plot", metavar="PATH")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    load_arguments(parser)
    parser.add_argument("--chunks", type=int, default=8, help="content chunks per reply")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="mock's seconds before each chunk")
    parser.add_argument("--only", choices=["direct", "graph"])
    parser.add_argument("--colocated", action="store_true", help="the remote inside the ingress (colocate: ingress)")
    parser.add_argument("--serve-defaults", action="store_true",
                        help="leave out " + ", ".join(FAST_SERVE_ENV) + " (Serve's own defaults)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with ExitStack() as stack:
        mock = start_mock_process(args.chunks, args.chunk_delay, stack)
        targets = [] if args.only == "graph" else [mock]
        if args.only != "direct":
            targets.append(start_graph(mock.base_url, args.serve_defaults, stack,
                                       lambda url, workdir: graph_run_config(url, workdir, args.colocated)))
        mode = "streaming" if args.stream else "non-streaming"
        print(f"{mode}, {args.concurrency} clients, {args.duration:g} s x {args.rounds} rounds, mock at {mock.base_url}")
        if args.only != "direct":
            print("Serve: " + ", ".join(f"{k}={os.environ.get(k, '(unset)')}" for k in FAST_SERVE_ENV))
        specs = {t.name: LoadSpec(t.base_url, MODEL, args.concurrency, args.duration, args.stream, args.warmup,
                                  t.server_pids) for t in targets}
        results = run_rounds(specs, args.rounds)
    print_table(results)
    if args.plot:
        settings = "" if args.only == "direct" else ", Serve defaults" if args.serve_defaults else ", fast Serve settings"
        plot(results, args.plot, f"{mode}, {args.concurrency} clients{settings}")


if __name__ == "__main__":
    main()
