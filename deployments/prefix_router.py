"""A Serve request router for engine deployments: requests whose prompts begin alike go to the same
replica, whose prefix cache already holds that beginning.

Set on a deployment as `request_router_config: {request_router_class: deployments.prefix_router:PrefixAffinityRouter}`.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from ray.serve._private.request_router.common import PendingRequest
from ray.serve._private.request_router.replica_wrapper import RunningReplica
from ray.serve._private.request_router.request_router import (
    FIFOMixin,
    LocalityMixin,
    MultiplexMixin,
    RequestRouter,
)

ROUTER_PATH = "deployments.prefix_router:PrefixAffinityRouter"


class PrefixAffinityRouter(FIFOMixin, LocalityMixin, MultiplexMixin, RequestRouter):
    """Ranks the replicas by rendezvous hashing of the prompt's first `prefix_chars` characters, so
    every ingress replica sends a prefix to the same engine replica without sharing any state, and a
    replica that comes or goes moves only its own share of prefixes. The first-ranked replica serves
    unless its queue is longer than the shortest known one by more than `imbalance_threshold`
    requests; then, as when it is full, two others drawn at random are probed and the less loaded
    serves (power of two choices).
    Requests without a prompt go by power of two."""

    def initialize_state(self, prefix_chars: int = 2048, imbalance_threshold: int = 8):
        self.prefix_chars = prefix_chars
        self.imbalance_threshold = imbalance_threshold

    async def choose_replicas(self, candidate_replicas: list[RunningReplica],
                              pending_request: PendingRequest | None = None) -> list[list[RunningReplica]]:
        if not candidate_replicas:
            return []
        prefix = prompt_prefix(pending_request.args if pending_request else (), self.prefix_chars)
        if prefix is None or len(candidate_replicas) == 1:
            return [random.sample(candidate_replicas, min(2, len(candidate_replicas)))]
        ranked = sorted(candidate_replicas, key=lambda r: _weight(prefix, r.replica_id.unique_id), reverse=True)
        preferred, others = ranked[0], ranked[1:]
        two_others = random.sample(others, min(2, len(others)))
        return [two_others] if self._overloaded(preferred, others) else [[preferred], two_others]

    def _overloaded(self, preferred: RunningReplica, others: list[RunningReplica]) -> bool:
        """A replica never probed counts as idle: this router probes only its first choice."""
        mine = self._replica_queue_len_cache.get(preferred.replica_id)
        if mine is None:
            return False
        return mine - min(self._replica_queue_len_cache.get(r.replica_id) or 0 for r in others) > self.imbalance_threshold


def prompt_prefix(args: Any, limit: int) -> str | None:
    """The first `limit` characters of the prompt of a provider call (`call(method, request, model)`):
    a chat request's message texts in order, or a completion's prompt; None for other calls."""
    for arg in args:
        messages = getattr(arg, "messages", None)
        if messages is not None:
            parts: list[str] = []
            size = 0
            for message in messages:
                for text in _texts(getattr(message, "content", None)):
                    parts.append(text)
                    size += len(text)
                    if size >= limit:
                        return "".join(parts)[:limit]
            return "".join(parts)
        prompt = getattr(arg, "prompt", None)
        if isinstance(prompt, str):
            return prompt[:limit]
        if isinstance(prompt, list) and prompt:
            return str(prompt[0])[:limit]
    return None


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        texts = (getattr(part, "text", None) or (part.get("text") if isinstance(part, dict) else None) for part in content)
        return [text for text in texts if isinstance(text, str)]
    return []


def _weight(prefix: str, replica: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{replica}\0{prefix}".encode(), digest_size=8).digest(), "big")
