"""The `router` and `departments` sections of config.yaml."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator


class DepartmentConfig(BaseModel):
    """A department: where its tickets go and how long it may take."""

    model_config = ConfigDict(extra="forbid")

    name: dict[str, str] = Field(min_length=1, description="display name per language")
    slack_channel: str | None = None
    handling_hours: float = Field(default=72, gt=0, description="time to resolve a forwarded ticket")
    lead: str | None = None
    keywords: list[str] = Field(default_factory=list, description="words that send a ticket here")

    def display_name(self, language: str) -> str:
        for candidate in (language, "en", "ko"):
            if candidate in self.name:
                return self.name[candidate]
        return next(iter(self.name.values()))


class DispatcherConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    poll_seconds: float = Field(default=1.0, gt=0, description="how often to look for due rows")
    batch: int = Field(default=50, ge=1)
    concurrency: int = Field(default=8, ge=1, description="recipients served at once")
    max_attempts: int = Field(default=12, ge=1)
    backoff_seconds: float = Field(default=2.0, gt=0, description="first retry delay; doubles each time")
    backoff_max_seconds: float = Field(default=900.0, gt=0)
    lease_seconds: float = Field(default=120.0, gt=0, description="a claim older than this is retaken")


class RouterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str = "Asia/Seoul"
    default_language: str = "ko"
    triage_department: str = "triage"
    notices: Path = Path("router/notices.yaml")
    dispatcher: DispatcherConfig = Field(default_factory=DispatcherConfig)

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
