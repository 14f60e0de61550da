"""The `router` and `departments` sections of config.yaml."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from knowledge.decision import SensitiveRule
from router.calendar import CalendarConfig


class DepartmentConfig(BaseModel):
    """A department: where its tickets go and how long it may take."""

    model_config = ConfigDict(extra="forbid")

    name: dict[str, str] = Field(min_length=1, description="display name per language")
    slack_channel: str | None = None
    handling_hours: float = Field(default=24, gt=0, description="working hours to resolve a forwarded ticket")
    lead: str | None = None  # the staff channel's user id of who is told of escalations (Slack: U...)
    keywords: list[str] = Field(default_factory=list, description="words that send a ticket here")
    # Who may act on this department's tickets from the staff channel (user ids); empty: anyone there.
    staff: list[str] = Field(default_factory=list)
    show_full_contact: bool = False  # the card shows the citizen's full number instead of a masked one

    def display_name(self, language: str) -> str:
        for candidate in (language, "en", "ko"):
            if candidate in self.name:
                return self.name[candidate]
        return next(iter(self.name.values()))


class DispatcherConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    poll_seconds: float = Field(default=1.0, gt=0, description="how often to look for due rows")
    batch: int = Field(default=50, ge=1)
    concurrency: int = Field(default=8, ge=1, description="calls to the provider at once")
    # A provider outage delays messages, it does not drop them: a transient failure is retried until
    # the message is this old (an SMS queued longer than ~10 hours would expire at Twilio anyway).
    give_up_after_hours: float = Field(default=24.0, gt=0)
    max_attempts: int = Field(default=1000, ge=1, description="a second bound, for tests")
    backoff_seconds: float = Field(default=2.0, gt=0, description="first retry delay; doubles each time")
    backoff_max_seconds: float = Field(default=300.0, gt=0)
    lease_seconds: float = Field(default=120.0, gt=0, description="a claim older than this is retaken")


class DeskConfig(BaseModel):
    """The staff desk's inboxes besides the departments' own (channels in the city's Slack)."""

    model_config = ConfigDict(extra="forbid")

    review_inbox: str | None = None  # the same-day review queue
    alerts_inbox: str | None = None  # for administrators: failed deliveries, broken FAQ edits
    language: str | None = None  # of status and department names on cards (default: the city's)


class MediaConfig(BaseModel):
    """Copying citizens' photos from the providers into the store (their links expire)."""

    model_config = ConfigDict(extra="forbid")

    poll_seconds: float = Field(default=5.0, gt=0)
    batch: int = Field(default=10, ge=1)
    max_bytes: int = Field(default=20 * 1024 * 1024, ge=1, description="a larger file is refused")
    give_up_after_hours: float = Field(default=72.0, gt=0)
    backoff_seconds: float = Field(default=5.0, gt=0)
    backoff_max_seconds: float = Field(default=900.0, gt=0)
    lease_seconds: float = Field(default=300.0, gt=0)


# What a citizen writes to reach a person after an automatic answer ("0" works in every language).
DEFAULT_PERSON_WORDS = {
    "ko": ["상담원", "상담사", "사람", "직원", "담당자", "상담원 연결"],
    "en": ["person", "human", "agent", "operator", "staff", "real person"],
    "zh": ["人工", "人工客服", "客服", "真人"],
    "ja": ["担当者", "オペレーター", "人間", "有人"],
    "vi": ["nhân viên", "người thật", "tổng đài viên"],
    "mn": ["ажилтан", "хүн", "оператор"],
}


class SensitiveConfig(BaseModel):
    """Reports that are never answered automatically and go to a restricted inbox."""

    model_config = ConfigDict(extra="forbid")

    # The restricted inbox; None sends them to the triage department, still flagged and hidden.
    department: str | None = None
    keywords: list[str] = Field(default_factory=list)

    def rule(self) -> SensitiveRule:
        return SensitiveRule.of(self.keywords, self.department)


class LifecycleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reopen_window_hours: float = Field(
        default=72, ge=0, description="a message this soon after resolution reopens"
    )
    rating_comment_minutes: float = Field(
        default=30, ge=0, description="the message after a rating is its comment"
    )
    remind_before_hours: float = Field(
        default=4, ge=0, description="remind staff this long before a ticket is due"
    )
    late_extension_hours: float = Field(
        default=8, gt=0, description="working hours added to a late ticket's due"
    )
    sweep_seconds: float = Field(
        default=60, gt=0, description="how often reminders and escalations are checked"
    )
    person_words: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_PERSON_WORDS))


class RoutingConfig(BaseModel):
    """The learned department model (README, "Routing"): used when no keyword rule or FAQ entry
    decides; below its threshold a ticket goes to the triage department."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    retrain_minutes: float = Field(
        default=60, gt=0, description="how often the examples are looked at and, if changed, learned again"
    )
    target_precision: float = Field(
        default=0.90, gt=0, le=1, description="the threshold is chosen for this share of right departments"
    )
    min_examples_per_department: int = Field(
        default=10, ge=5, description="a department with fewer examples is never predicted"
    )
    # Weigh departments by how active they were around the moment a text arrives (days of a Gaussian
    # kernel over their examples' times); unset, the text alone decides.
    time_scale_days: float | None = Field(default=None, gt=0)
    # How the threshold is chosen: "forward" judges the model on examples newer than those it learned
    # from (as it is used); "shuffled" on random folds, which promise more than new tickets keep.
    validation: Literal["forward", "shuffled"] = "forward"


class RetentionConfig(BaseModel):
    """How long citizens' words and addresses are kept (README, "Retention")."""

    model_config = ConfigDict(extra="forbid")

    # Days after a ticket is closed (a message without a ticket: after it arrived) until its texts,
    # photos and the citizen's address are purged; the counts, times and ratings stay. None: never.
    days: float | None = Field(default=1095, gt=0)
    sweep_minutes: float = Field(default=60, gt=0, description="how often the purge looks for what is due")
    batch: int = Field(default=200, ge=1, description="tickets (and messages, contacts) per transaction")


class ReportConfig(BaseModel):
    """The monthly report of citizens' voice (README, "The monthly report"), posted to staff."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    folder: Path = Path("data/reports")  # one folder per month inside (relative: to the config's)
    channel: str | None = None  # the staff channel to post to; None: the desk's alerts inbox
    post_at: time = Field(default=time(9, 0), description="on the first working day, from this time on")
    check_minutes: float = Field(default=10, gt=0, description="how often the server looks whether it is due")

    @field_validator("post_at", mode="before")
    @classmethod
    def _post_at_text(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 09:00 as the base-60 number 540.
            raise ValueError(f'post_at: got the number {value}; write the time quoted, e.g. "09:00"')
        return value


class RouterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str = "Asia/Seoul"
    default_language: str = "ko"
    triage_department: str = "triage"
    notices: Path = Path("router/notices.yaml")
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    sensitive: SensitiveConfig = Field(default_factory=SensitiveConfig)
    # Handling time in working hours per category (an FAQ entry id), overriding the department's.
    category_hours: dict[str, float] = Field(default_factory=dict)
    dispatcher: DispatcherConfig = Field(default_factory=DispatcherConfig)
    media: MediaConfig = Field(default_factory=MediaConfig)
    desk: DeskConfig = Field(default_factory=DeskConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Seoul)") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
