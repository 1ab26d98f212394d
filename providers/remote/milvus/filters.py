"""OpenAI vector-store attribute filters as Milvus boolean expressions over the `attributes` JSON field."""

from __future__ import annotations

import json

from providers.api.errors import InvalidRequestError
from providers.api.vector_io import AttributeValue, ComparisonFilter, CompoundFilter

_OPERATORS = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def literal(value: AttributeValue) -> str:
    """A Milvus literal. Strings are JSON-quoted without \\u escapes, which Milvus rejects."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def expression(spec: ComparisonFilter | CompoundFilter) -> str:
    if isinstance(spec, CompoundFilter):
        return "(" + f" {spec.type} ".join(expression(f) for f in spec.filters) + ")"
    path = f"attributes[{literal(spec.key)}]"
    if spec.type in ("in", "nin"):
        if not isinstance(spec.value, list) or not spec.value:
            raise InvalidRequestError(f"filter '{spec.type}' on '{spec.key}' needs a non-empty list", param="filters")
        # Milvus takes no `in` on a JSON path: an `or` chain says the same.
        either = "(" + " or ".join(f"{path} == {literal(v)}" for v in spec.value) + ")"
        return either if spec.type == "in" else f"(not {either})"
    if isinstance(spec.value, list):
        raise InvalidRequestError(f"filter '{spec.type}' on '{spec.key}' compares with one value, not a list", param="filters")
    return f"{path} {_OPERATORS[spec.type]} {literal(spec.value)}"
