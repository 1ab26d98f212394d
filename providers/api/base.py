"""The base of every request body: fields it does not name are a 400, not silently dropped."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_TOOLS = 128  # tools one request may offer the model, as on OpenAI
# OpenAI's `metadata`: at most 16 pairs, keys up to 64 characters, values up to 512.
Metadata = Annotated[dict[Annotated[str, StringConstraints(max_length=64)],
                          Annotated[str, StringConstraints(max_length=512)]], Field(max_length=16)]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LenientWireModel(BaseModel):
    """Tolerates fields it does not name (OpenAI clients echo back extras such as `refusal`)."""

    model_config = ConfigDict(extra="allow")
