from pydantic import BaseModel, ConfigDict, Field, SecretStr


class OpenAICompatConfig(BaseModel):
    """An OpenAI-compatible endpoint: OpenAI itself, a vLLM server, Ollama, Together, Groq..."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = "https://api.openai.com/v1"
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=120.0, gt=0, description="whole-request timeout")
    connect_timeout_s: float = Field(default=5.0, gt=0)
    max_connections: int = Field(default=256, ge=1)
    extra_headers: dict[str, str] = {}
