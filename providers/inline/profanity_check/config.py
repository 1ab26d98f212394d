from pydantic import BaseModel, ConfigDict, Field


class ProfanityCheckConfig(BaseModel):
    """A text is flagged when the classifier's probability reaches `threshold` (a shield's
    `params.threshold` overrides it)."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(default=0.5, gt=0, le=1)
