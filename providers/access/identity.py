"""An identity: the principal a token names and its attributes (roles, teams, projects, namespaces).

The user of a request and the owner of a record are both identities.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Identity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    principal: str = Field(min_length=1)
    attributes: dict[str, list[str]] = {}

    @field_validator("attributes", mode="before")
    @classmethod
    def _values_as_lists(cls, value):
        """A single value (`teams: ml`) is a list of one."""
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    def tags(self) -> str:
        """The attributes as one searchable string: each (name, value) pair becomes `|["name","value"]|`.

        JSON escapes every quote inside a value, so `|["` only starts a tag and a LIKE match on a
        whole tag cannot straddle two tags or match inside a value."""
        return "".join(attribute_tag(name, value) for name, values in sorted(self.attributes.items()) for value in values)


def attribute_tag(name: str, value: str) -> str:
    return "|" + json.dumps([name, value], separators=(",", ":")) + "|"
