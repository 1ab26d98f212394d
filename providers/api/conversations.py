"""Conversations API wire types (OpenAI's shapes) and the items a conversation holds."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field

from providers.api.base import WireModel
from providers.api.errors import InvalidRequestError

MAX_ITEMS_PER_CALL = 20
ITEM_TYPES = ("message", "function_call", "function_call_output", "file_search_call", "web_search_call",
              "mcp_call", "mcp_list_tools", "mcp_approval_request", "mcp_approval_response", "reasoning")
ROLES = ("user", "assistant", "system", "developer")
_ID_PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "mcp_approval_response": "mcpr"}

Metadata = dict[str, str]


class CreateConversationRequest(WireModel):
    items: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_ITEMS_PER_CALL)
    metadata: Metadata | None = Field(default=None, max_length=16)


class UpdateConversationRequest(WireModel):
    metadata: Metadata = Field(max_length=16)


class AddItemsRequest(WireModel):
    items: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ITEMS_PER_CALL)


# What a later turn reads of each item: an item stored without it would break every turn after it.
_REQUIRED_STRINGS = {kind: ("name", "arguments") for kind in ("function_call", "mcp_call", "mcp_approval_request")}


def normalized_item(item: dict[str, Any], param: str) -> dict[str, Any]:
    """An item as stored: with its type, an id, and a message's content as a list of parts."""
    kind = item.get("type", "message" if "role" in item else None)
    if kind not in ITEM_TYPES:
        raise InvalidRequestError(f"item type must be one of {', '.join(ITEM_TYPES)}", param=f"{param}.type")
    normalized = {**item, "type": kind}
    if kind == "message":
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise InvalidRequestError(f"role must be one of {', '.join(ROLES)}", param=f"{param}.role")
        if isinstance(content, str):
            content = [{"type": "output_text" if role == "assistant" else "input_text", "text": content}]
        if not isinstance(content, list) or not all(isinstance(p, dict) and isinstance(p.get("type"), str) for p in content):
            raise InvalidRequestError("content must be a string or a list of typed parts", param=f"{param}.content")
        normalized.update(content=content, status=item.get("status", "completed"))
    elif kind in ("function_call", "function_call_output") and not isinstance(item.get("call_id"), str):
        raise InvalidRequestError(f"a {kind} item needs a call_id", param=f"{param}.call_id")
    for field in _REQUIRED_STRINGS.get(kind, ()):
        if not isinstance(item.get(field), str):
            raise InvalidRequestError(f"a {kind} item needs '{field}' as a string", param=f"{param}.{field}")
    if not isinstance(normalized.get("id"), str) or not normalized["id"]:
        normalized["id"] = f"{_ID_PREFIXES.get(kind, kind)}_{uuid.uuid4().hex}"
    return normalized
