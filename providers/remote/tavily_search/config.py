from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class TavilySearchConfig(BaseModel):
    """Tavily's Search API (or a service that speaks its wire format)."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr
    base_url: str = "https://api.tavily.com"
    max_results: int = Field(default=5, ge=1, le=20, description="results per search unless a call asks otherwise")
    search_depth: Literal["basic", "advanced"] = "basic"
    timeout_s: float = Field(default=20.0, gt=0, description="whole-request timeout")
