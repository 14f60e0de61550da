"""The `knowledge:` section of config.yaml."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from knowledge.calibration import Confidence
from knowledge.learning import RefitSettings


class LearningConfig(BaseModel):
    """Learning from staff's decisions (README, "Learning from staff")."""

    model_config = ConfigDict(extra="forbid")

    # Review items sent with an entry become its questions and labels; "0" after an automatic
    # answer and review items answered in staff's own words become labels of what not to answer.
    enabled: bool = True
    # How often the store is checked for new labels (several instances share what any one learned).
    refresh_seconds: float = Field(default=10.0, gt=0)
    # When the thresholds are refitted from the labels each night, in the city's time (HH:MM).
    refit_at: str = Field(default="03:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    # A point above the promise (0.95): the labels are yesterday's texts, the threshold is for
    # tomorrow's, and the questions learned since make every text look a little surer.
    target_precision: float = Field(default=0.96, gt=0.0, le=1.0)
    review_precision: float = Field(default=0.5, ge=0.0, le=1.0)
    # The share of out-of-scope texts to weigh the labels to; None: as they come. Every text that
    # reaches review or is answered gets a label (sent, own words, "0", or accepted at closing), so
    # above the review threshold the labels are the traffic itself, out-of-scope share included.
    out_of_scope_rate: float | None = Field(default=None, ge=0.0, lt=1.0)
    # No refit before there are this many labels, this many of them of texts not to answer.
    min_labels: int = Field(default=30, ge=2)
    min_out_of_scope: int = Field(default=10, ge=1)

    def settings(self) -> RefitSettings:
        return RefitSettings(
            target_precision=self.target_precision,
            review_precision=self.review_precision,
            out_of_scope_rate=self.out_of_scope_rate,
            min_labels=self.min_labels,
            min_out_of_scope=self.min_out_of_scope,
        )


class KnowledgeConfig(BaseModel):
    """Where the FAQ lives and how sure the matcher must be before it answers on its own."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Path("knowledge/faq")
    # Until `faq calibrate` has written calibration.json beside the FAQ files (whose thresholds then
    # win), these act on the default confidence model's probability that the top match is right:
    # at or above answer_threshold the citizen is answered at once; at or above suggest_threshold
    # the match goes to the review queue and its department may route the ticket.
    # Unset: the thresholds shipped with the default confidence model (knowledge/confidence.json).
    answer_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    suggest_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    # How often the FAQ folder is checked for edits; 0 disables watching.
    reload_seconds: float = Field(default=2.0, ge=0.0)
    learning: LearningConfig = Field(default_factory=LearningConfig)

    def default_confidence(self) -> Confidence:
        return Confidence.default(self.answer_threshold, self.suggest_threshold)

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> KnowledgeConfig:
        default = Confidence.default()
        answer = default.answer_threshold if self.answer_threshold is None else self.answer_threshold
        suggest = default.review_threshold if self.suggest_threshold is None else self.suggest_threshold
        if suggest > answer:
            raise ValueError(
                f"suggest_threshold ({suggest}) must not be greater than answer_threshold ({answer})"
            )
        return self
