"""The `knowledge:` section of config.yaml."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class KnowledgeConfig(BaseModel):
    """Where the FAQ lives and how sure the matcher must be before it answers on its own."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Path("knowledge/faq")
    # At or above this score the top match is answered automatically.
    answer_threshold: float = Field(default=0.40, ge=0.0, le=1.0)
    # At or above this score an entry is a plausible candidate (its department may route the ticket).
    suggest_threshold: float = Field(default=0.30, ge=0.0, le=1.0)
    # How often the FAQ folder is checked for edits; 0 disables watching.
    reload_seconds: float = Field(default=2.0, ge=0.0)

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> KnowledgeConfig:
        if self.suggest_threshold > self.answer_threshold:
            raise ValueError(
                f"suggest_threshold ({self.suggest_threshold}) must not be greater than "
                f"answer_threshold ({self.answer_threshold})"
            )
        return self
