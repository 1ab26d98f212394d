"""OpenAI's cursor page over a list already in memory (a record's items, a job's events)."""

from __future__ import annotations

from typing import Any

from providers.api.errors import InvalidRequestError


def page_after(items: list[dict[str, Any]], after: str | None, limit: int, missing: str) -> dict[str, Any]:
    """Up to `limit` of `items` (in the order shown) after the one whose id is `after`; an `after`
    that names none is a 400 with the message `missing`."""
    start = 0
    if after is not None:
        start = next((i + 1 for i, item in enumerate(items) if item["id"] == after), None)
        if start is None:
            raise InvalidRequestError(missing, param="after")
    data = items[start:start + limit]
    return {"object": "list", "data": data, "has_more": start + limit < len(items),
            "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}
