"""raystack against its peers, side by side on this machine: OGX 1.5.0 (Llama Stack's successor on
PyPI) and raystack's graph, each in front of the same loopback OpenAI mock, the inference store on
SQLite in both.

    python -m bench.peers [--install-peers] [--api chat|messages] [--rounds 2] [--duration 20]
                          [--concurrency 50] [--chunks 10] [--server-cores 0] [--client-cores 1] [--plot PATH]

Each server runs alone, as its users start it (`ogx run --insecure run.yaml`, one worker;
`serve run graphs.builder:build config=run.yaml`), pinned to `--server-cores` with `taskset`,
while the mock and the load client share `--client-cores`. Rounds go OGX, raystack, OGX,
raystack..., one server up at a time; each round loads the server non-streaming, then streaming
(`--chunks` content chunks per reply), through OpenAI's chat completions or (`--api messages`)
Anthropic's Messages API. CPU per request is the server's whole process tree (for
raystack: Ray's own processes, the replicas and HAProxy). Prints every run, the medians and the
ratios raystack / OGX.

`--install-peers` makes OGX's virtual environment first (Python 3.12, `pip install ogx==1.5.0`,
under ~/.cache/raystack/peers); without it, a missing one is an error naming the flag.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import yaml

from bench.gateway import COLUMNS, MODEL, PROJECT_ROOT, free_port, median_of, start_mock_process
from bench.load import LoadResult, LoadSpec, run_load_in_process

OGX_VERSION = "1.5.0"
PEERS_DIR = Path.home() / ".cache" / "raystack" / "peers"
OGX_VENV = PEERS_DIR / f"ogx-{OGX_VERSION}"
RAYSTACK_PORT = 8000  # where `serve run` serves
MODES = ("chat", "stream")
START_TIMEOUT_S = 180.0


# ---------------------------------------------------------------- the peers' installs


def python312() -> str:
    """A Python 3.12 interpreter: on PATH, or one of pyenv's."""
    candidates = [shutil.which("python3.12"), *sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.12*/bin/python3.12")))]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "--version"], capture_output=True).returncode == 0:
            return candidate
    raise SystemExit("OGX needs Python 3.12, and none was found (python3.12 on PATH or under ~/.pyenv/versions)")


def install_ogx() -> None:
    if (OGX_VENV / "bin" / "ogx").exists():
        return
    print(f"installing OGX {OGX_VERSION} into {OGX_VENV}", flush=True)
    subprocess.run([python312(), "-m", "venv", str(OGX_VENV)], check=True)
    subprocess.run([str(OGX_VENV / "bin" / "pip"), "install", "--quiet", f"ogx=={OGX_VERSION}"], check=True)


# ---------------------------------------------------------------- the servers


@dataclass(frozen=True)
class Server:
    """How to start one server in front of the mock: its name, the command for a run config written
    into a folder, the config, where it answers and the mock's model's id there."""
    name: str
    command: Callable[[Path], list[str]]
    run_config: Callable[[str, Path], dict[str, Any]]
    base_url: str
    model: str
    env: dict[str, str]


def ogx_server() -> Server:
    port = free_port()
    return Server(
        name="OGX",
        command=lambda config: [str(OGX_VENV / "bin" / "ogx"), "run", "--insecure", str(config)],
        run_config=lambda mock_url, state: ogx_run_config(mock_url, state, port),
        base_url=f"http://127.0.0.1:{port}/v1",
        model=f"openai/{MODEL}",  # OGX names a model by its provider
        env={},
    )


def ogx_run_config(mock_url: str, state: Path, port: int) -> dict[str, Any]:
    return {
        "version": 2,
        "distro_name": "bench",
        "apis": ["inference", "messages"],
        "providers": {"inference": [{"provider_id": "openai", "provider_type": "remote::openai",
                                     "config": {"api_key": "sk-mock", "base_url": mock_url}}],
                      "messages": [{"provider_id": "builtin", "provider_type": "inline::builtin",
                                    "config": {"kvstore": {"namespace": "messages", "backend": "kv_default"}}}]},
        "storage": {
            "backends": {"kv_default": {"type": "kv_sqlite", "db_path": str(state / "kvstore.db")},
                         "sql_default": {"type": "sql_sqlite", "db_path": str(state / "sql_store.db")}},
            "stores": {"metadata": {"namespace": "registry", "backend": "kv_default"},
                       "inference": {"table_name": "inference_store", "backend": "sql_default",
                                     "max_write_queue_size": 10000, "num_writers": 4}},
        },
        "registered_resources": {"models": [{"model_id": MODEL, "provider_id": "openai", "provider_model_id": MODEL,
                                             "model_type": "llm", "metadata": {}}]},
        "server": {"host": "127.0.0.1", "port": port, "workers": 1},
    }


def raystack_server(colocated: bool = False) -> Server:
    """raystack's default graph (the remote in its own deployment), or with the remote in the ingress."""
    return Server(
        name="raystack colocated" if colocated else "raystack",
        command=lambda config: [str(Path(sys.executable).with_name("serve")), "run", "graphs.builder:build", f"config={config}"],
        run_config=lambda mock_url, state: raystack_run_config(mock_url, state, colocated),
        base_url=f"http://127.0.0.1:{RAYSTACK_PORT}/v1",
        model=MODEL,
        # A small object store: Ray sizes /dev/shm's share by it.
        env={"RAY_DEFAULT_OBJECT_STORE_MEMORY_PROPORTION": "0.02"},
    )


def raystack_run_config(mock_url: str, state: Path, colocated: bool) -> dict[str, Any]:
    remote = {"provider_id": "openai", "provider_type": "remote::openai",
              "config": {"api_key": "sk-mock", "base_url": mock_url}}
    if colocated:
        remote["deployment"] = {"colocate": "ingress"}
    return {
        "apis": ["inference", "models"],
        "providers": {"inference": [remote]},
        "registered_resources": {"models": [{"model_id": MODEL, "provider_id": "openai"}]},
        "storage": {
            "backends": {"kv": {"type": "kv_sqlite", "db_path": str(state / "kv.db")},
                         "sql": {"type": "sql_sqlite", "db_path": str(state / "sql.db")}},
            "stores": {"metadata": {"backend": "kv", "namespace": "registry"},
                       "inference": {"backend": "sql", "table_name": "chat_completions"}},
        },
    }


@contextmanager
def running(server: Server, mock_url: str, cores: str) -> Iterator[int]:
    """The server started alone, pinned to `cores`, answering; yields its process id and stops it
    as Ctrl-C would (then kills what is left of its process group)."""
    with tempfile.TemporaryDirectory(prefix=f"raystack-peers-{server.name.lower()}-") as folder:
        state = Path(folder)
        config = state / "run.yaml"
        config.write_text(yaml.safe_dump(server.run_config(mock_url, state)))
        log = (state / "server.log").open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "RAYSTACK_", "OGX_"))}
        process = subprocess.Popen(["taskset", "-c", cores, *server.command(config)], cwd=PROJECT_ROOT,
                                   env={**env, **server.env}, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for_model(server, process, state / "server.log")
            yield process.pid
        finally:
            stop(process)
            log.close()


def wait_for_model(server: Server, process: subprocess.Popen, log: Path) -> None:
    """Until a chat completion through the server answers 200."""
    deadline = time.monotonic() + START_TIMEOUT_S
    body = {"model": server.model, "messages": [{"role": "user", "content": "ready?"}]}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=10).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    raise TimeoutError(f"{server.name} did not answer within {START_TIMEOUT_S:g} s:\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def port_is_free(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
    except httpx.ConnectError:
        return True
    except httpx.HTTPError:
        pass
    return False


# ---------------------------------------------------------------- rounds and report


Results = dict[str, dict[str, list[LoadResult]]]  # mode -> server -> runs
rps, cpu_ms = COLUMNS["RPS"], COLUMNS["CPU ms/req"]


def run_rounds(servers: list[Server], args: argparse.Namespace, mock_url: str) -> Results:
    results: Results = {mode: {s.name: [] for s in servers} for mode in MODES}
    cores = tuple(int(c) for c in args.client_cores.split(","))
    print(f"{'round':30}{'RPS':>10}{'p50 ms':>10}{'p99 ms':>10}{'CPU ms/req':>12}{'errors':>8}")
    for round_no in range(1, args.rounds + 1):
        for server in servers:
            with running(server, mock_url, args.server_cores) as pid:
                for mode in MODES:
                    spec = LoadSpec(server.base_url, server.model, args.concurrency, args.duration, mode == "stream",
                                    args.warmup, (pid,), cores=cores, api=args.api)
                    result = run_load_in_process(spec)
                    results[mode][server.name].append(result)
                    print(f"{f'{round_no} {server.name} {mode}':30}{_cells(result)}", flush=True)
    return results


def _cells(result: LoadResult) -> str:
    latency = result.latency_ms
    p50, p99 = (f"{latency.p50:.1f}", f"{latency.p99:.1f}") if latency else ("-", "-")
    return f"{result.rps:>10.1f}{p50:>10}{p99:>10}{result.cpu_ms_per_request:>12.2f}{sum(result.errors.values()):>8}"


def print_table(results: Results) -> None:
    names = list(next(iter(results.values())))
    print("\nmedians over the rounds")
    print(f"{'server':26}" + "".join(f"{f'{mode} RPS':>14}{f'{mode} CPU ms':>15}" for mode in MODES))
    for name in names:
        print(f"{name:26}" + "".join(f"{median_of(results[m][name], rps):>14.1f}{median_of(results[m][name], cpu_ms):>15.2f}"
                                    for m in MODES))
    base = names[0]
    for ours in names[1:]:
        print(f"{f'{ours} / {base}':26}" + "".join(
            f"{median_of(results[m][ours], rps) / median_of(results[m][base], rps):>13.2f}x"
            f"{median_of(results[m][ours], cpu_ms) / median_of(results[m][base], cpu_ms):>14.2f}x" for m in MODES))


def plot(results: Results, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(next(iter(results.values())))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, (label, metric) in zip(axes, (("requests/s", rps), ("server CPU ms per request", cpu_ms))):
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            values = [median_of(results[mode][name], metric) for mode in MODES]
            bars = ax.bar([m + i * width for m in range(len(MODES))], values, width, label=name)
            ax.bar_label(bars, fmt="%.1f")
        ax.set_xticks([m + width * (len(names) - 1) / 2 for m in range(len(MODES))], ["non-streaming", "streaming"])
        ax.set_title(label)
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--install-peers", action="store_true", help=f"make OGX {OGX_VERSION}'s venv if missing")
    parser.add_argument("--api", choices=("chat", "messages"), default="chat",
                        help="OpenAI's /v1/chat/completions or Anthropic's /v1/messages")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each run")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--chunks", type=int, default=10, help="content chunks per streamed reply")
    parser.add_argument("--server-cores", default="0", help="the servers' cores, as taskset takes them")
    parser.add_argument("--client-cores", default="1", help="the mock's and the load client's cores")
    parser.add_argument("--colocated", action="store_true",
                        help="a third server: raystack with the remote inside the ingress (colocate: ingress)")
    parser.add_argument("--plot", metavar="PATH")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.install_peers:
        install_ogx()
    if not (OGX_VENV / "bin" / "ogx").exists():
        raise SystemExit(f"OGX {OGX_VERSION} is not installed under {OGX_VENV}: run with --install-peers")
    if not port_is_free(RAYSTACK_PORT):
        raise SystemExit(f"port {RAYSTACK_PORT} is taken; `serve run` serves there: stop what holds it")
    with ExitStack() as stack:
        mock = start_mock_process(args.chunks, 0.0, stack)
        os.sched_setaffinity(mock.server_pids[0], {int(c) for c in args.client_cores.split(",")})
        print(f"{args.concurrency} clients, {args.duration:g} s per run, {args.rounds} rounds; servers on cores "
              f"{args.server_cores}, mock and client on {args.client_cores}; mock at {mock.base_url}")
        servers = [ogx_server(), raystack_server()] + ([raystack_server(colocated=True)] if args.colocated else [])
        results = run_rounds(servers, args, mock.base_url)
    print_table(results)
    if args.plot:
        plot(results, args.plot, f"{args.api}: {args.concurrency} clients, each server alone on core {args.server_cores}, "
                                 "inference store on SQLite")


if __name__ == "__main__":
    main()
