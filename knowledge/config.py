"""The `knowledge:` section of config.yaml."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from knowledge.calibration import Confidence


class KnowledgeConfig(BaseModel):
    """Where the FAQ lives and how sure the matcher must be before it answers on its own."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Path("knowledge/faq")
    # Until `faq calibrate` has written calibration.json beside the FAQ files (whose thresholds then
    # win), these act on the default confidence model's probability that the top match is right:
    # at or above answer_threshold the citizen is answered at once; at or above suggest_threshold
    # the match goes to the review queue and its department may route the ticket.
    answer_threshold: float = Field(default=0.80, ge=0.0, le=1.0)
    suggest_threshold: float = Field(default=0.45, ge=0.0, le=1.0)
    # How often the FAQ folder is checked for edits; 0 disables watching.
    reload_seconds: float = Field(default=2.0, ge=0.0)

    def default_confidence(self) -> Confidence:
        return Confidence.default(self.answer_threshold, self.suggest_threshold)

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> KnowledgeConfig:
        if self.suggest_threshold > self.answer_threshold:
            raise ValueError(
                f"suggest_threshold ({self.suggest_threshold}) must not be greater than "
                f"answer_threshold ({self.answer_threshold})"
            )
        return self
