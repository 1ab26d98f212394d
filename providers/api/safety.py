"""Safety API wire types: OpenAI moderations, Llama Stack shields and run-shield."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# OpenAI's moderation categories; a shield scores those it knows and reports the rest false, 0.0.
CATEGORIES = ("harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
              "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
              "violence/graphic")


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
