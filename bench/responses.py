"""What a Responses turn costs on top of a chat completion: the same one-step answer from the mock
backend as a chat completion (ingress -> remote::openai), and as a response (ingress -> agents
deployment -> remote::openai), not stored and stored (SQLite), interleaved.

    python -m bench.responses [--concurrency 50] [--duration 20] [--rounds 3] [--stream] [--plot PATH]

CPU per request counts every Ray process this script started (the mock's own is left out).
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from typing import Any

from bench.gateway import (
    MODEL,
    _header,
    _line,
    graph_run_config,
    load_arguments,
    plot,
    run_rounds,
    start_graph,
    start_mock_process,
)
from bench.load import LoadSpec

# name -> (api, store)
RUNS = {"chat": ("chat", False), "responses": ("responses", False), "stored": ("responses", True)}


def responses_run_config(mock_url: str, workdir: str) -> dict[str, Any]:
    """The gateway's graph, with the agents deployment and a responses store on SQLite."""
    config = graph_run_config(mock_url, workdir)
    config["apis"] += ["responses", "agents"]
    config["providers"]["agents"] = [{"provider_id": "builtin", "provider_type": "inline::builtin"}]
    config["storage"]["backends"]["sql"] = {"type": "sql_sqlite", "db_path": f"{workdir}/sql.db"}
    config["storage"]["stores"]["responses"] = {"backend": "sql", "table_name": "responses"}
    return config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    load_arguments(parser)
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        mock = start_mock_process(8, 0.0, stack)
        graph = start_graph(mock.base_url, False, stack, responses_run_config)
        mode = "streaming" if args.stream else "non-streaming"
        print(f"{mode}, {args.concurrency} clients, {args.duration:g} s x {args.rounds} rounds")
        specs = {name: LoadSpec(graph.base_url, MODEL, args.concurrency, args.duration, args.stream, args.warmup,
                                graph.server_pids, api=api, store=store) for name, (api, store) in RUNS.items()}
        results = run_rounds(specs, args.rounds)
    print(f"\nmedians over the rounds (errors: total)\n{_header('run')}")
    for name, runs in results.items():
        print(_line(name, runs))
    if args.plot:
        plot(results, args.plot, f"chat vs responses through the graph, {mode}, {args.concurrency} clients",
             ("RPS", "p50 ms", "CPU ms/req"))


if __name__ == "__main__":
    main()
