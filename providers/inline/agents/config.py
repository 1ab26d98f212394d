from pydantic import BaseModel, ConfigDict, Field


class BuiltinAgentsConfig(BaseModel):
    """`max_steps`: model calls a turn makes at most (each server-side tool round is one more)."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int = Field(default=10, ge=1, le=100)
    stream_batch_window_s: float = Field(default=0.02, ge=0, le=1,
                                         description="stream events that arrive within this window travel together")
