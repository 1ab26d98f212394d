"""The base of every request body: fields it does not name are a 400, not silently dropped."""

from pydantic import BaseModel, ConfigDict

MAX_TOOLS = 128  # tools one request may offer the model, as on OpenAI


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LenientWireModel(BaseModel):
    """Tolerates fields it does not name (OpenAI clients echo back extras such as `refusal`)."""

    model_config = ConfigDict(extra="allow")
