"""A closed-loop load client for OpenAI chat completions or responses, or Anthropic messages, and
server CPU accounting.

`concurrency` workers each send one request after another for a warm-up, then for `duration_s`;
a request counts when it completes inside the measured window. The client runs on aiohttp and
uvloop, in a process of its own (`run_load_in_process`) so it shares no interpreter with what it
measures. CPU is the user+system time of the given server processes and their descendants over
the window (and the client's own, to show whether it was the bound); TTFT is the time to the first chunk with non-empty content.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Literal

import aiohttp
import psutil

from bench.mock_openai import fast_loop_factory

CpuSnapshot = dict[tuple[int, float], float]


@dataclass(frozen=True)
class LoadSpec:
    base_url: str
    model: str
    concurrency: int
    duration_s: float
    stream: bool = False
    warmup_s: float = 2.0
    server_pids: tuple[int, ...] = ()
    timeout_s: float = 60.0
    api: Literal["chat", "responses", "messages"] = "chat"
    store: bool = False  # responses only: store each response
    cores: tuple[int, ...] = ()  # the client's CPU cores (all if empty)
    max_tokens: int | None = None  # chat only: the answer's length, with ignore_eos exactly this
    ignore_eos: bool = False  # vLLM's sampling parameter: generate max_tokens whatever the model says


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p90: float
    p99: float

    @classmethod
    def of(cls, values: list[float]) -> Percentiles | None:
        if not values:
            return None
        ordered = sorted(values)
        return cls(*(ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.50, 0.90, 0.99)))


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: dict[str, int]
    elapsed_s: float
    latency_ms: Percentiles | None
    ttft_ms: Percentiles | None
    server_cpu_s: float
    client_cpu_s: float
    ok_total: int = 0  # successful requests in the whole run, warm-up and tail included

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / max(self.requests, 1)


# ---------------------------------------------------------------- server CPU


def cpu_snapshot(pids: tuple[int, ...]) -> CpuSnapshot:
    """CPU seconds (user + system, own and reaped children) of the processes and their descendants."""
    processes: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            processes.update({p.pid: p for p in [root, *root.children(recursive=True)]})
        except psutil.NoSuchProcess:
            continue
    snapshot: CpuSnapshot = {}
    for process in processes.values():
        try:
            times = process.cpu_times()
            key = (process.pid, process.create_time())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        snapshot[key] = times.user + times.system + times.children_user + times.children_system
    return snapshot


def cpu_seconds_between(before: CpuSnapshot, after: CpuSnapshot) -> float:
    """Processes born in between count whole; ones that died in between are lost (rare, small)."""
    return sum(seconds - before.get(key, 0.0) for key, seconds in after.items())


# ---------------------------------------------------------------- requests


class _Window:
    """Collects the requests that complete inside the measured window."""

    def __init__(self, spec: LoadSpec):
        self.start = time.perf_counter() + spec.warmup_s
        self.end = self.start + spec.duration_s
        self.latencies: list[float] = []
        self.ttfts: list[float] = []
        self.errors: Counter[str] = Counter()
        self.ok_total = 0

    def record(self, sent: float, ttft: float | None, error: str | None) -> None:
        done = time.perf_counter()
        self.ok_total += error is None
        if not self.start <= done <= self.end:
            return
        if error is not None:
            self.errors[error] += 1
            return
        self.latencies.append(1000 * (done - sent))
        if ttft is not None:
            self.ttfts.append(1000 * (ttft - sent))


class _StreamError(Exception):
    """A stream that failed after its 200 status."""


async def _read_stream(response: aiohttp.ClientResponse) -> float | None:
    """Read an SSE stream to its end (chat: `[DONE]`, or the connection closed after a choice's
    `finish_reason`, as OGX ends it; responses: `response.completed`; messages: `message_stop`);
    returns when the first content arrived."""
    first: float | None = None
    finished = False
    async for line in response.content:
        if not line.startswith(b"data:"):
            continue
        if line.startswith(b"data: [DONE]"):
            return first
        event = json.loads(line[5:])
        if "error" in event or event.get("type") in ("error", "response.failed"):  # chat's error chunk; responses' events
            raise _StreamError("error event in stream")
        if event.get("type") in ("response.completed", "message_stop"):
            return first
        if first is None and _has_content(event):
            first = time.perf_counter()
        finished = finished or any(choice.get("finish_reason") for choice in event.get("choices") or ())
    if finished:
        return first
    raise _StreamError("stream ended before its last event")


def _has_content(event: dict) -> bool:
    if event.get("type") in ("response.output_text.delta", "content_block_delta"):
        return True
    choices = event.get("choices") or [{}]
    return bool((choices[0].get("delta") or {}).get("content") or choices[0].get("text"))


async def _worker(session: aiohttp.ClientSession, url: str, body: bytes, stream: bool, window: _Window) -> None:
    headers = {"content-type": "application/json"}
    while time.perf_counter() < window.end:
        sent, ttft, error = time.perf_counter(), None, None
        try:
            async with session.post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    await response.read()
                    error = f"HTTP {response.status}"
                elif stream:
                    ttft = await _read_stream(response)
                else:
                    await response.read()
        except _StreamError as exc:
            error = str(exc)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            error = type(exc).__name__
        window.record(sent, ttft, error)


async def _measure_cpu(window: _Window, pids: tuple[int, ...]) -> tuple[float, float]:
    """CPU seconds of the servers and of this client over the window."""
    await asyncio.sleep(window.start - time.perf_counter())
    before, client_before = cpu_snapshot(pids), time.process_time()
    await asyncio.sleep(window.end - time.perf_counter())
    return cpu_seconds_between(before, cpu_snapshot(pids)), time.process_time() - client_before


def _request_body(spec: LoadSpec) -> bytes:
    if spec.api == "responses":
        return json.dumps({"model": spec.model, "input": "Say hello.", "stream": spec.stream, "store": spec.store}).encode()
    if spec.api == "messages":
        return json.dumps({"model": spec.model, "max_tokens": spec.max_tokens or 256, "stream": spec.stream,
                           "messages": [{"role": "user", "content": "Say hello."}]}).encode()
    body: dict = {"model": spec.model, "messages": [{"role": "user", "content": "Say hello."}], "stream": spec.stream}
    if spec.stream:
        body["stream_options"] = {"include_usage": True}
    if spec.max_tokens is not None:
        body["max_tokens"] = spec.max_tokens
    if spec.ignore_eos:
        body["ignore_eos"] = True
    return json.dumps(body).encode()


async def _load(spec: LoadSpec) -> LoadResult:
    window = _Window(spec)
    connector = aiohttp.TCPConnector(limit=spec.concurrency)
    timeout = aiohttp.ClientTimeout(total=spec.timeout_s)
    path = {"responses": "/responses", "messages": "/messages"}.get(spec.api, "/chat/completions")
    url, body = spec.base_url.rstrip("/") + path, _request_body(spec)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        cpu = asyncio.create_task(_measure_cpu(window, spec.server_pids))
        await asyncio.gather(*(_worker(session, url, body, spec.stream, window) for _ in range(spec.concurrency)))
        server_cpu_s, client_cpu_s = await cpu
    return LoadResult(
        requests=len(window.latencies),
        errors=dict(window.errors),
        elapsed_s=spec.duration_s,
        latency_ms=Percentiles.of(window.latencies),
        ttft_ms=Percentiles.of(window.ttfts),
        server_cpu_s=server_cpu_s,
        client_cpu_s=client_cpu_s,
        ok_total=window.ok_total,
    )


def run_load(spec: LoadSpec) -> LoadResult:
    if spec.cores:
        os.sched_setaffinity(0, spec.cores)
    with asyncio.Runner(loop_factory=fast_loop_factory()) as runner:
        return runner.run(_load(spec))


def run_load_in_process(spec: LoadSpec) -> LoadResult:
    """Run the client in a fresh spawned process (safe from a Ray driver, which must not fork)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(run_load, spec).result()
