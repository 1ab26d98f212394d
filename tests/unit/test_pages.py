"""Cursor pages over lists in memory: input items, a completion's messages, a job's events."""

import pytest

from deployments.services.pages import page_after
from providers.api.errors import InvalidRequestError

ITEMS = [{"id": f"i{n}"} for n in range(5)]


def test_pages_follow_after_to_the_end():
    seen, after = [], None
    while True:
        page = page_after(ITEMS, after, 2, "unused")
        seen += [item["id"] for item in page["data"]]
        assert (page["first_id"], page["last_id"]) == (page["data"][0]["id"], page["data"][-1]["id"])
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert seen == [item["id"] for item in ITEMS]
    assert page_after(ITEMS, "i4", 2, "unused") == {"object": "list", "data": [], "has_more": False,
                                                     "first_id": None, "last_id": None}


def test_an_after_that_names_no_item_is_a_400_on_after():
    with pytest.raises(InvalidRequestError) as refused:
        page_after(ITEMS, "i9", 2, "no item 'i9' to list after")
    assert (refused.value.param, refused.value.message) == ("after", "no item 'i9' to list after")
