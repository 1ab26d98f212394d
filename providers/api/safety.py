"""Safety API wire types: OpenAI moderations, Llama Stack shields and run-shield."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field

from providers.api.base import WireModel

# OpenAI's moderation categories; a shield scores those it knows and reports the rest false, 0.0.
CATEGORIES = ("harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
              "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
              "violence/graphic")


class ModerationRequest(WireModel):
    input: str | list[str] = Field(min_length=1)
    model: str | None = Field(default=None, description="a shield id; the first registered shield when absent")

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else self.input


class RunShieldRequest(WireModel):
    shield_id: str = Field(min_length=1)
    messages: list[dict[str, Any]] = Field(min_length=1)
    params: dict[str, Any] | None = None


class Shield(BaseModel):
    identifier: str
    provider_id: str
    provider_resource_id: str
    type: str = "shield"
    params: dict[str, Any] = {}


def moderation_result(scores: dict[str, float], threshold: float) -> dict[str, Any]:
    """One input's result: every category, flagged where its score reaches `threshold`."""
    categories = {name: scores.get(name, 0.0) >= threshold for name in CATEGORIES}
    return {
        "flagged": any(categories.values()),
        "categories": categories,
        "category_scores": {name: scores.get(name, 0.0) for name in CATEGORIES},
        "category_applied_input_types": {name: ["text"] for name in CATEGORIES},
    }


def message_text(message: dict[str, Any]) -> str:
    """The text of a chat message: its string content, or its text parts joined."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")
    return ""


class SafetyProvider(Protocol):
    """Moderates texts: one OpenAI moderation result (`flagged`, `categories`, `category_scores`) per text."""

    async def moderate(self, texts: list[str], params: dict[str, Any]) -> list[dict[str, Any]]: ...

    async def shutdown(self) -> None: ...
