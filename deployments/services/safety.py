"""Shields from the run config, and the moderations and run-shield calls that use them."""

from __future__ import annotations

import uuid
from typing import Any

from deployments.clients import SafetyClient
from providers.api.errors import InvalidRequestError, NotFoundError
from providers.api.safety import ModerationRequest, RunShieldRequest, Shield, message_text
from providers.run_config import ShieldEntry


class SafetyService:
    def __init__(self, entries: list[ShieldEntry], providers: dict[str, SafetyClient]):
        """`providers`: each safety provider's client by provider id."""
        self.providers = providers
        self.shields = {
            entry.shield_id: Shield(identifier=entry.shield_id, provider_id=entry.provider_id,
                                    provider_resource_id=entry.provider_shield_id or entry.shield_id, params=entry.params)
            for entry in entries
        }

    def shield(self, shield_id: str, param: str = "shield_id") -> Shield:
        found = self.shields.get(shield_id)
        if found is None:
            known = ", ".join(self.shields) or "none"
            raise NotFoundError(f"Shield '{shield_id}' not found (registered: {known})", param=param)
        return found

    async def _moderate(self, shield: Shield, texts: list[str], params: dict[str, Any] | None) -> list[dict[str, Any]]:
        return await self.providers[shield.provider_id].moderate(texts, {**shield.params, **(params or {})})

    async def moderations(self, request: ModerationRequest) -> dict[str, Any]:
        if request.model is None and not self.shields:
            raise InvalidRequestError("no shield is registered to moderate with", param="model")
        shield = self.shield(request.model, "model") if request.model else next(iter(self.shields.values()))
        results = await self._moderate(shield, request.texts(), None)
        return {"id": f"modr-{uuid.uuid4().hex}", "model": shield.identifier, "results": results}

    async def run_shield(self, request: RunShieldRequest) -> dict[str, Any]:
        shield = self.shield(request.shield_id)
        texts = [message_text(m) for m in request.messages]
        results = await self._moderate(shield, texts, request.params)
        flagged = sorted({name for result in results for name, hit in result["categories"].items() if hit})
        if not flagged:
            return {"violation": None}
        scores = {name: max(r["category_scores"][name] for r in results) for name in flagged}
        return {"violation": {
            "violation_level": "error",
            "user_message": f"I can't help with that: the message was flagged for {', '.join(flagged)}.",
            "metadata": {"shield_id": shield.identifier, "categories": flagged, "category_scores": scores,
                         "flagged_messages": [i for i, r in enumerate(results) if r["flagged"]]},
        }}
