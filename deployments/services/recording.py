"""Hands chat completions to the inference store: whole answers at once, streams once they end.

A stored completion is keyed by an id the server makes, not the upstream's: a remote that reuses
short ids (`chatcmpl-1`) or sends none would otherwise lose records, or mix users' records."""

from __future__ import annotations

import json
import random
import re
import time
from typing import Any

import orjson

from providers.access.identity import Identity
from providers.api.inference import ChatCompletionRequest
from providers.storage.inference_store import InferenceStore


class CompletionRecording:
    """One chat completion on its way to the store, with the request's input messages, owner and
    latency (`latency_ms`: from the request's arrival to the answer's end; stored records only)."""

    def __init__(self, store: InferenceStore, request: ChatCompletionRequest, owner: Identity | None):
        self.store = store
        self.owner = owner
        self.input_messages = [m.model_dump(exclude_none=True) for m in request.messages]
        self.model = request.model
        self.stream = StreamedCompletion()
        self.id = f"chatcmpl-{_IDS.getrandbits(128):032x}"
        self._upstream_id: str | None = None  # the `"id": "..."` token of the stream's chunks
        self._started = time.monotonic()

    async def save(self, completion: dict[str, Any]) -> dict[str, Any]:
        """Queue a whole completion under the server's id, and return it so; waits only when the
        store's queue is full."""
        completion = {**completion, "id": self.id}
        await self.store.queue.put(self.store.completion_row(self._timed(completion), self.input_messages, self.owner))
        return completion

    def feed(self, sse_text: str) -> str:
        """Take in streamed chunks; returns them carrying the server's id."""
        if self._upstream_id is None:
            found = _CHUNK_ID.search(sse_text)
            self._upstream_id = found.group(0) if found else ""
        if self._upstream_id:
            sse_text = sse_text.replace(self._upstream_id, f'"id":{json.dumps(self.id)}')
        self.stream.feed(sse_text)
        if self.stream.head is not None:
            self.stream.head["id"] = self.id
        return sse_text

    def finish_stream(self, incomplete_reason: str | None) -> None:
        """Queue what the stream delivered. Called from a `finally` that may be cancelled (the client
        left), so it never awaits; a stream cut short is stored marked with `incomplete_details`."""
        completion = self.stream.completion(self.model, incomplete_reason)
        if completion is not None:
            self.store.queue.put_soon(self.store.completion_row(self._timed(completion), self.input_messages, self.owner))

    def _timed(self, completion: dict[str, Any]) -> dict[str, Any]:
        return {**completion, "latency_ms": round((time.monotonic() - self._started) * 1000)}


# Seeded from the OS once per process, so an id costs no system call (under load py-spy put 2.8% of
# the ingress's samples in uuid4, which reads os.urandom for each).
_IDS = random.Random()
_CHUNK_ID = re.compile(r'"id":\s*"[^"\\]*"')


class StreamedCompletion:
    """Rebuilds a chat.completion from the SSE text of its chunks."""

    def __init__(self):
        self.head: dict[str, Any] | None = None
        self.usage: dict[str, Any] | None = None
        self.choices: dict[int, dict[str, Any]] = {}

    def feed(self, sse_text: str) -> list[str]:
        """Merge the chunks in `sse_text`; returns the content they add to the first choice."""
        deltas = []
        for line in sse_text.splitlines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = orjson.loads(line[6:])
            if "error" in chunk:
                continue
            if self.head is None:
                self.head = {k: chunk[k] for k in ("id", "created", "model", "system_fingerprint", "service_tier") if k in chunk}
            if chunk.get("usage"):
                self.usage = chunk["usage"]
            for choice in chunk.get("choices") or []:
                self._merge(choice)
                content = (choice.get("delta") or {}).get("content")
                if choice["index"] == 0 and content:
                    deltas.append(content)
        return deltas

    def _merge(self, choice: dict[str, Any]) -> None:
        slot = self.choices.setdefault(choice["index"], {"content": [], "tool_calls": {}, "finish_reason": None, "logprobs": []})
        delta = choice.get("delta") or {}
        if delta.get("content"):
            slot["content"].append(delta["content"])
        for call in delta.get("tool_calls") or []:
            merged = slot["tool_calls"].setdefault(call.get("index", 0), {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
            merged["id"] = call.get("id") or merged["id"]
            function = call.get("function") or {}
            merged["function"]["name"] += function.get("name") or ""
            merged["function"]["arguments"] += function.get("arguments") or ""
        if choice.get("finish_reason"):
            slot["finish_reason"] = choice["finish_reason"]
        if (choice.get("logprobs") or {}).get("content"):
            slot["logprobs"].extend(choice["logprobs"]["content"])

    def completion(self, model: str, incomplete_reason: str | None) -> dict[str, Any] | None:
        if self.head is None:
            return None
        choices = []
        for index, slot in sorted(self.choices.items()):
            message: dict[str, Any] = {"role": "assistant", "content": "".join(slot["content"]) or None}
            if slot["tool_calls"]:
                message["tool_calls"] = [call for _, call in sorted(slot["tool_calls"].items())]
            choices.append({
                "index": index, "message": message, "finish_reason": slot["finish_reason"],
                "logprobs": {"content": slot["logprobs"]} if slot["logprobs"] else None,
            })
        completion = {"object": "chat.completion", **self.head, "model": model, "choices": choices}
        if self.usage is not None:
            completion["usage"] = self.usage
        if incomplete_reason is not None:
            completion["incomplete_details"] = {"reason": incomplete_reason}
        return completion
