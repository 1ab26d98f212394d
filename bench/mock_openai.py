"""A fast loopback OpenAI-compatible mock server, the fake remote for benchmarks and tests.

Serves `GET /v1/models`, `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings` and
vLLM's `POST /tokenize` on a raw asyncio protocol (httptools parser, uvloop when run as a process), so it costs a
few tens of microseconds per request and never bounds a benchmark.

Replies are fixed: `MockConfig.reply`, streamed in `chunks` slices (`max_tokens` truncates them
with finish_reason "length"), `chunk_delay_s` before each content chunk; embeddings answer after
`embedding_delay_s`. A chat whose `tool_choice` names a function (or is "required") calls that
function (or the first tool) with the smallest arguments its JSON schema admits. Any model name is answered; usage counts are rough (prompt: 4 bytes of
request body a token; completion: one token a chunk). Embeddings are deterministic unit vectors derived from each input's text.

Fault models, chosen by the request's `model`:
  fail-<status>  answers that 4xx/5xx status with an OpenAI error body (fail-400, fail-429, fail-500)
  hang           never answers; the request ends when the client gives up or the server stops
  drop-stream    streams the role chunk (chat) and one content chunk, then resets the connection;
                 a non-streaming request is reset without an answer

HTTP/1.1 with keep-alive; no pipelining (clients send a request after the previous answer).

    base_url, stop = start_mock_server()        # in a thread; base_url ends in /v1
    python -m bench.mock_openai --port 0        # as a process; prints its base URL first
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import json
import struct
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable

import httptools

FAULT_STATUS_PREFIX = "fail-"
HANG_MODEL = "hang"
DROP_STREAM_MODEL = "drop-stream"

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 429: "rate_limit_error"}


@dataclass(frozen=True)
class MockConfig:
    reply: str = "Hello! This is a fixed reply from the mock OpenAI server."
    chunks: int = 8
    chunk_delay_s: float = 0.0
    embedding_dim: int = 8
    embedding_delay_s: float = 0.0
    models: tuple[str, ...] = ("mock-model",)
    fixed_id: str | None = None  # every answer's id, as a remote that reuses ids does


# ---------------------------------------------------------------- OpenAI payloads


def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _event(data: Any) -> bytes:
    return b"data: " + _dumps(data) + b"\n\n"


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _pieces(config: MockConfig, body: dict[str, Any]) -> tuple[list[str], str]:
    """The reply's content chunks, cut to `max_tokens` (one token a chunk), and the finish reason."""
    text, n = config.reply, config.chunks
    pieces = [text[i * len(text) // n:(i + 1) * len(text) // n] for i in range(n)]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and limit < n:
        return pieces[:limit], "length"
    return pieces, "stop"


def _chat_stream(head: dict[str, Any], pieces: list[str], finish: str, usage: dict | None) -> list[bytes]:
    def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
        return {**head, "choices": [choice]}

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in pieces]
    events.append(chunk({}, finish))
    return _close_stream(head, events, usage)


def _completion_stream(head: dict[str, Any], pieces: list[str], finish: str, usage: dict | None) -> list[bytes]:
    def chunk(text: str, reason: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": reason}]}

    events = [chunk(piece) for piece in pieces] + [chunk("", finish)]
    return _close_stream(head, events, usage)


def _close_stream(head: dict[str, Any], events: list[dict], usage: dict | None) -> list[bytes]:
    if usage is not None:
        events = [{**event, "usage": None} for event in events] + [{**head, "choices": [], "usage": usage}]
    return [_event(event) for event in events] + [b"data: [DONE]\n\n"]


def _stream_usage(body: dict[str, Any], usage: dict[str, int]) -> dict[str, int] | None:
    options = body.get("stream_options") or {}
    return usage if options.get("include_usage") else None


def _forced_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    """The tool a chat's tool_choice forces, as its function definition."""
    choice, tools = body.get("tool_choice"), [t.get("function") or {} for t in body.get("tools") or []]
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        return next((tool for tool in tools if tool.get("name") == name), None)
    return tools[0] if choice == "required" and tools else None


def _example(schema: Any) -> Any:
    """The smallest value a JSON schema admits, as far as its type and required properties say."""
    if not isinstance(schema, dict):
        return None
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: _example(properties.get(name)) for name in schema.get("required") or []}
    if kind == "array":
        return [_example(schema.get("items"))] if schema.get("minItems") else []
    return {"string": "mock", "integer": 1, "number": 1.0, "boolean": True}.get(kind)


def _tool_call(tool: dict[str, Any], call_id: str) -> dict[str, Any]:
    arguments = json.dumps(_example(tool.get("parameters") or {"type": "object"}))
    return {"id": call_id, "type": "function", "function": {"name": tool.get("name"), "arguments": arguments}}


def _tool_call_stream(head: dict[str, Any], call: dict[str, Any], usage: dict | None) -> list[bytes]:
    """The call as vLLM streams it: its id and name first, then its arguments in two pieces."""
    def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]}

    arguments, function = call["function"]["arguments"], call["function"]
    half = len(arguments) // 2
    opening = {"index": 0, "id": call["id"], "type": "function", "function": {"name": function["name"], "arguments": ""}}
    events = [chunk({"role": "assistant", "content": None, "tool_calls": [opening]})]
    events += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}) for piece in (arguments[:half], arguments[half:])]
    events.append(chunk({}, "tool_calls"))
    return _close_stream(head, events, usage)


def _embedding(text: str, dim: int) -> list[float]:
    raw = [(b - 127.5) / 127.5 for b in hashlib.shake_256(text.encode()).digest(dim)]
    norm = sum(x * x for x in raw) ** 0.5 or 1.0
    return [x / norm for x in raw]


def _embedding_inputs(value: Any) -> list[str]:
    if isinstance(value, str) or (isinstance(value, list) and value and isinstance(value[0], int)):
        value = [value]
    return [item if isinstance(item, str) else json.dumps(item) for item in value or []]


# ---------------------------------------------------------------- HTTP


class _Connection(asyncio.Protocol):
    """One client connection: parses requests with httptools and hands them to the server."""

    def __init__(self, server: MockServer):
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url, self.body = b"", bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.send(400, _dumps(_error_body(400, "malformed HTTP request")), keep_alive=False)

    def on_message_begin(self) -> None:
        self.url, self.body = b"", bytearray()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        path = self.url.split(b"?", 1)[0].decode()
        self.server.handle(self, self.parser.get_method().decode(), path, bytes(self.body))

    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, status: int, body: bytes, keep_alive: bool = True) -> None:
        if not self.open:
            return
        keep_alive = keep_alive and self.parser.should_keep_alive()
        close = "" if keep_alive else "connection: close\r\n"
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\n{close}\r\n")
        self.transport.write(head.encode() + body)
        if not keep_alive:
            self.transport.close()

    async def stream(self, events: list[bytes], content: range, delay_s: float, drop_after: int | None) -> None:
        """Send SSE events chunk-encoded; sleep `delay_s` before each event index in `content`."""
        if not self.open:
            return
        self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                             b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")
        for i, event in enumerate(events):
            if delay_s and i in content:
                await asyncio.sleep(delay_s)
            if not self.open:
                return
            if i == drop_after:
                self.transport.abort()
                return
            self.transport.write(b"%x\r\n%b\r\n" % (len(event), event))
        self.transport.write(b"0\r\n\r\n")
        if not self.parser.should_keep_alive():
            self.transport.close()


class MockServer:
    """Routes parsed requests to the OpenAI endpoints; tracks connections so `close` ends them all."""

    def __init__(self, config: MockConfig):
        self.config = config
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task] = set()
        self._ids = itertools.count()
        self._id_prefix = uuid.uuid4().hex[:8]  # ids stay unique across servers and restarts, as a real API's are
        self._server: asyncio.Server | None = None

    async def listen(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port, backlog=4096)
        return self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.transport.abort()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def handle(self, conn: _Connection, method: str, path: str, raw: bytes) -> None:
        if method == "GET" and path == "/v1/models":
            models = [{"id": m, "object": "model", "created": 0, "owned_by": "mock"} for m in self.config.models]
            return conn.send(200, _dumps({"object": "list", "data": models}))
        endpoint = {"/v1/chat/completions": self._chat, "/v1/completions": self._completion,
                    "/v1/embeddings": self._embeddings, "/tokenize": self._tokenize}.get(path)
        if endpoint is None or method != "POST":
            return conn.send(404, _dumps(_error_body(404, f"no route {method} {path}")))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return conn.send(400, _dumps(_error_body(400, "the body is not a JSON object")))
        if not self._fault(conn, body):
            endpoint(conn, body, len(raw) // 4 + 1)

    def _fault(self, conn: _Connection, body: dict[str, Any]) -> bool:
        """Answer a fault model's request the faulty way; False for an ordinary model."""
        model = str(body.get("model", ""))
        if model.startswith(FAULT_STATUS_PREFIX) and model[len(FAULT_STATUS_PREFIX):].isdigit():
            status = int(model[len(FAULT_STATUS_PREFIX):])
            conn.send(status, _dumps(_error_body(status, f"mock failure {status} for model {model}")))
        elif model == HANG_MODEL:
            pass  # the connection stays open and unanswered
        elif model == DROP_STREAM_MODEL and not body.get("stream"):
            conn.transport.abort()
        else:
            return False
        return True

    def _chat(self, conn: _Connection, body: dict[str, Any], prompt_tokens: int) -> None:
        pieces, finish = _pieces(self.config, body)
        stream = bool(body.get("stream"))
        head = self._head("chatcmpl", "chat.completion.chunk" if stream else "chat.completion", body)
        usage = _usage(prompt_tokens, len(pieces))
        tool = _forced_tool(body)
        if tool is not None:
            call = _tool_call(tool, f"call-{head['id']}")
            if stream:
                return self._stream(conn, body, _tool_call_stream(head, call, _stream_usage(body, usage)), range(0))
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}
            return conn.send(200, _dumps({**head, "choices": [choice], "usage": usage}))
        if stream:
            events = _chat_stream(head, pieces, finish, _stream_usage(body, usage))
            return self._stream(conn, body, events, range(1, 1 + len(pieces)))
        message = {"role": "assistant", "content": "".join(pieces), "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        conn.send(200, _dumps({**head, "choices": [choice], "usage": usage, "system_fingerprint": None}))

    def _completion(self, conn: _Connection, body: dict[str, Any], prompt_tokens: int) -> None:
        pieces, finish = _pieces(self.config, body)
        head = self._head("cmpl", "text_completion", body)
        usage = _usage(prompt_tokens, len(pieces))
        if body.get("stream"):
            events = _completion_stream(head, pieces, finish, _stream_usage(body, usage))
            return self._stream(conn, body, events, range(len(pieces)))
        choice = {"text": "".join(pieces), "index": 0, "logprobs": None, "finish_reason": finish}
        conn.send(200, _dumps({**head, "choices": [choice], "usage": usage}))

    def _embeddings(self, conn: _Connection, body: dict[str, Any], prompt_tokens: int) -> None:
        dim = body.get("dimensions") or self.config.embedding_dim
        data = []
        for i, text in enumerate(_embedding_inputs(body.get("input"))):
            vector: Any = _embedding(text, dim)
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": vector})
        usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
        payload = _dumps({"object": "list", "data": data, "model": body.get("model"), "usage": usage})
        if self.config.embedding_delay_s:
            asyncio.get_running_loop().call_later(self.config.embedding_delay_s, conn.send, 200, payload)
        else:
            conn.send(200, payload)

    def _tokenize(self, conn: _Connection, body: dict[str, Any], prompt_tokens: int) -> None:
        """vLLM's answer shape; the count is the mock's usual rough one."""
        conn.send(200, _dumps({"count": prompt_tokens, "max_model_len": 4096, "tokens": list(range(prompt_tokens))}))

    def _head(self, prefix: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        answer_id = self.config.fixed_id or f"{prefix}-{self._id_prefix}{next(self._ids)}"
        return {"id": answer_id, "object": kind, "created": int(time.time()),
                "model": body.get("model")}

    def _stream(self, conn: _Connection, body: dict[str, Any], events: list[bytes], content: range) -> None:
        drop_after = content.start + 1 if body.get("model") == DROP_STREAM_MODEL else None
        task = asyncio.ensure_future(conn.stream(events, content, self.config.chunk_delay_s, drop_after))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


# ---------------------------------------------------------------- starting


def start_mock_server(
    port: int = 0, config: MockConfig | None = None, host: str = "127.0.0.1"
) -> tuple[str, Callable[[], None]]:
    """Run a mock server on its own event loop in a daemon thread; returns (base_url, stop)."""
    started: Future[tuple[asyncio.AbstractEventLoop, int]] = Future()
    server = MockServer(config or MockConfig())

    def run() -> None:
        loop = asyncio.new_event_loop()
        try:
            started.set_result((loop, loop.run_until_complete(server.listen(host, port))))
        except BaseException as exc:  # a taken port: report it to the caller
            started.set_exception(exc)
            return
        loop.run_forever()
        loop.run_until_complete(server.aclose())
        loop.close()

    thread = threading.Thread(target=run, name="mock-openai", daemon=True)
    thread.start()
    loop, bound = started.result()

    def stop() -> None:
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join()

    return f"http://{host}:{bound}/v1", stop


def fast_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed, else asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _serve_forever(config: MockConfig, host: str, port: int) -> None:
    server = MockServer(config)
    bound = await server.listen(host, port)
    print(f"http://{host}:{bound}/v1", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090, help="0 picks a free port")
    parser.add_argument("--reply", default=MockConfig.reply)
    parser.add_argument("--chunks", type=int, default=MockConfig.chunks)
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds before each content chunk")
    parser.add_argument("--embedding-delay", type=float, default=0.0, help="seconds before each embeddings answer")
    args = parser.parse_args(argv)
    config = MockConfig(reply=args.reply, chunks=args.chunks, chunk_delay_s=args.chunk_delay,
                        embedding_delay_s=args.embedding_delay)
    try:
        with asyncio.Runner(loop_factory=fast_loop_factory()) as runner:
            runner.run(_serve_forever(config, args.host, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
