from pydantic import BaseModel, ConfigDict, Field


class MLflowPromptsConfig(BaseModel):
    """An MLflow tracking server's prompt registry. Credentials come from the environment, as MLflow's
    client reads them (MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN)."""

    model_config = ConfigDict(extra="forbid")

    tracking_uri: str = Field(min_length=1, description="e.g. http://mlflow.internal:5000")
    cache_ttl_s: float = Field(default=5.0, ge=0, description="how long an ingress replica reuses a prompt it read: how "
                                                             "stale an edit made in MLflow (or through another replica) may look")
    default_alias: str = Field(default="default", pattern=r"^[A-Za-z0-9_-]+$",
                               description="the alias that marks a prompt's default version")
    timeout_s: float = Field(default=10.0, gt=0, description="each call to the server; no retries, so a down server is "
                                                             "a 503 at once")
    max_prompts: int = Field(default=1000, ge=1, le=10_000, description="the most prompts (and versions of one) a list reads")
