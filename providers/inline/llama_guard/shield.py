"""Each text goes to the Llama Guard model in Llama Guard 3's classification prompt; its verdict
('safe', or 'unsafe' and the S-codes violated) is reported in OpenAI's moderation categories."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from providers.api.errors import InvalidRequestError, ProviderError
from providers.api.inference import ChatCompletionRequest, ChatModel
from providers.api.safety import moderation_result
from providers.inline.llama_guard.config import LlamaGuardConfig, check_codes

HAZARDS = {
    "S1": "Violent Crimes", "S2": "Non-Violent Crimes", "S3": "Sex-Related Crimes",
    "S4": "Child Sexual Exploitation", "S5": "Defamation", "S6": "Specialized Advice", "S7": "Privacy",
    "S8": "Intellectual Property", "S9": "Indiscriminate Weapons", "S10": "Hate", "S11": "Suicide & Self-Harm",
    "S12": "Sexual Content", "S13": "Elections", "S14": "Code Interpreter Abuse",
}

# S6, S7, S8 and S13 have no OpenAI equivalent: they flag a text without naming a category.
OPENAI_EQUIVALENTS = {
    "S1": "violence", "S2": "illicit", "S3": "sexual", "S4": "sexual/minors", "S5": "harassment",
    "S9": "illicit/violent", "S10": "hate", "S11": "self-harm", "S12": "sexual", "S14": "illicit",
}

VERDICT = re.compile(r"\s*(safe|unsafe)\b(.*)", re.IGNORECASE | re.DOTALL)
CODE = re.compile(r"\bS(\d{1,2})\b", re.IGNORECASE)
PARAM = "params.excluded_categories"


def build_prompt(text: str, categories: list[str]) -> str:
    """Llama Guard 3's prompt to classify `text` as a user turn against `categories` (S-codes)."""
    listed = "\n".join(f"{code}: {HAZARDS[code]}." for code in categories)
    return (
        "Task: Check if there is unsafe content in 'User' messages in conversations according our safety "
        "policy with the below categories.\n\n"
        f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{listed}\n<END UNSAFE CONTENT CATEGORIES>\n\n"
        f"<BEGIN CONVERSATION>\n\nUser: {text}\n\n<END CONVERSATION>\n\n"
        "Provide your safety assessment for ONLY THE LAST User message in the above conversation:\n"
        " - First line must read 'safe' or 'unsafe'.\n"
        " - If unsafe, a second line must include a comma-separated list of violated categories."
    )


def parse_verdict(reply: str, model: str) -> list[str] | None:
    """None for 'safe'; for 'unsafe', the known S-codes it names (maybe none)."""
    match = VERDICT.match(reply)
    if match is None:
        raise ProviderError(f"{model} did not answer 'safe' or 'unsafe' as Llama Guard does; it said {reply[:200]!r}")
    if match.group(1).lower() == "safe":
        return None
    codes = (f"S{int(number)}" for number in CODE.findall(match.group(2)))
    return list(dict.fromkeys(code for code in codes if code in HAZARDS))


def verdict_result(verdict: list[str] | None) -> dict[str, Any]:
    """One text's moderation result: flagged when unsafe, the codes' OpenAI equivalents true at 1.0."""
    codes = verdict or []
    result = moderation_result({OPENAI_EQUIVALENTS[c]: 1.0 for c in codes if c in OPENAI_EQUIVALENTS}, 1.0)
    return {**result, "flagged": verdict is not None, "llama_guard_categories": codes}


def reply_text(completion: dict[str, Any]) -> str:
    """The first choice's content of a chat completion; empty when it has none."""
    message = (completion.get("choices") or [{}])[0].get("message") or {}
    return message.get("content") or ""


class LlamaGuardShield:
    def __init__(self, config: LlamaGuardConfig, models: dict[str, ChatModel]):
        self.config = config
        self._guard = models[config.model]

    async def moderate(self, texts: list[str], params: dict[str, Any]) -> list[dict[str, Any]]:
        excluded = self._excluded(params)
        categories = [code for code in HAZARDS if code not in excluded]
        verdicts = await asyncio.gather(*(self._classify(build_prompt(text, categories)) for text in texts))
        return [verdict_result(verdict) for verdict in verdicts]

    async def health(self) -> dict[str, Any]:
        return {"status": "OK"}

    async def shutdown(self) -> None:
        pass

    def _excluded(self, params: dict[str, Any]) -> set[str]:
        excluded = params.get("excluded_categories", self.config.excluded_categories)
        if not isinstance(excluded, list):
            raise InvalidRequestError("excluded_categories must be a list of codes such as ['S6']", param=PARAM)
        try:
            return set(check_codes(excluded))
        except ValueError as exc:
            raise InvalidRequestError(f"excluded_categories: {exc}", param=PARAM) from None

    async def _classify(self, prompt: str) -> list[str] | None:
        request = ChatCompletionRequest(model=self.config.model, messages=[{"role": "user", "content": prompt}],
                                        temperature=0, max_tokens=self.config.max_tokens)
        completion = await self._guard.chat_completion(request)
        return parse_verdict(reply_text(completion), self.config.model)
