"""What the ingress's metrics middleware (deployments/metrics.RequestMetrics) adds to each request,
measured inside a Ray worker, where Ray's metrics record for real.

    python -m bench.middleware [--requests 20000] [--rounds 5]

A minimal ASGI app (one 200 response) is called `--requests` times bare and wrapped in the
middleware, alternating, in one Ray task; prints microseconds per request of each and the
difference, the median over `--rounds`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time


async def _answer(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive():
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message):
    pass


class _Route:
    path = "/v1/chat/completions"


async def _per_request_us(app, requests: int) -> float:
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "route": _Route()}
    started = time.perf_counter()
    for _ in range(requests):
        await app(scope, _receive, _send)
    return (time.perf_counter() - started) / requests * 1e6


def measure(requests: int, rounds: int) -> dict[str, float]:
    from deployments.metrics import RequestMetrics

    wrapped = RequestMetrics(_answer)
    bare, with_metrics = [], []
    for _ in range(rounds):
        bare.append(asyncio.run(_per_request_us(_answer, requests)))
        with_metrics.append(asyncio.run(_per_request_us(wrapped, requests)))
    return {"bare": statistics.median(bare), "middleware": statistics.median(with_metrics)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    import ray

    ray.init(num_cpus=1, object_store_memory=80 * 1024**2, include_dashboard=False, log_to_driver=False)
    try:
        result = ray.get(ray.remote(num_cpus=0.1)(measure).remote(args.requests, args.rounds))
    finally:
        ray.shutdown()
    print(f"bare app            {result['bare']:8.1f} us/request")
    print(f"with RequestMetrics {result['middleware']:8.1f} us/request")
    print(f"middleware cost     {result['middleware'] - result['bare']:8.1f} us/request")


if __name__ == "__main__":
    main()
