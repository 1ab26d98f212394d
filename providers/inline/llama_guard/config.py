from pydantic import BaseModel, ConfigDict, Field, field_validator

# Llama Guard 3's hazard categories, by the codes its verdicts name.
CODES = tuple(f"S{n}" for n in range(1, 15))


def check_codes(codes: list[str]) -> list[str]:
    """`codes` when each is a Llama Guard 3 category; a ValueError naming the first that is not."""
    for code in codes:
        if code not in CODES:
            raise ValueError(f"{code!r} is not a Llama Guard 3 category (S1..S14)")
    return codes


class LlamaGuardConfig(BaseModel):
    """The graph's Llama Guard 3 model and the categories it is not asked about (a shield's
    `params.excluded_categories` overrides them)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, description="the graph's model id of the Llama Guard model")
    excluded_categories: list[str] = []
    max_tokens: int = Field(default=20, ge=1)

    @field_validator("excluded_categories")
    @classmethod
    def _known_codes(cls, codes: list[str]) -> list[str]:
        return check_codes(codes)

    def models(self) -> list[str]:
        """The graph models this provider depends on."""
        return [self.model]
