"""The classifier scores abusive, insulting or threatening language; its one score is reported as
OpenAI's `harassment` category (every other category reads false, 0.0)."""

from __future__ import annotations

import asyncio
from typing import Any

from providers.api.errors import InvalidRequestError
from providers.api.safety import moderation_result
from providers.inline.profanity_check.config import ProfanityCheckConfig

CATEGORY = "harassment"


class ProfanityShield:
    def __init__(self, config: ProfanityCheckConfig):
        from profanity_check import predict_prob

        self.config = config
        self._predict_prob = predict_prob

    async def moderate(self, texts: list[str], params: dict[str, Any]) -> list[dict[str, Any]]:
        threshold = params.get("threshold", self.config.threshold)
        if not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
            raise InvalidRequestError("threshold must be a number in (0, 1]", param="params.threshold")
        scores = await asyncio.to_thread(self._predict_prob, texts) if texts else []
        return [moderation_result({CATEGORY: float(score)}, threshold) for score in scores]

    async def health(self) -> dict[str, Any]:
        return {"status": "OK"}

    async def shutdown(self) -> None:
        pass
