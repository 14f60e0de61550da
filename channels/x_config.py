"""The `channels.x` section: X's API v2, checked before anything starts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from channels.settings import RateLimitConfig

X_API = "https://api.twitter.com"  # what tweepy builds every URL on


class XConfig(BaseModel):
    """The `channels.x` section."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    consumer_key: str = ""
    consumer_secret: str = ""
    access_token: str = ""
    access_token_secret: str = ""
    mode: Literal["polling", "webhook"] = "polling"  # webhook: Account Activity API, where the city has it
    api_base_url: str = X_API
    # Every call costs money and mentions allow 450 calls per 15 minutes: poll gently (PROVIDERS.md).
    mentions_poll_seconds: float = Field(default=60.0, gt=0)
    dm_poll_seconds: float = Field(default=90.0, gt=0)
    poll_direct_messages: bool = True
    page_size: int = Field(default=100, ge=5, le=100)  # results per lookup call (X allows 5..100)
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    # A failed poll waits error_backoff_seconds, doubling up to max_backoff_seconds; a 429 waits
    # until X's x-rate-limit-reset plus the margin (clocks differ).
    error_backoff_seconds: float = Field(default=5.0, gt=0)
    max_backoff_seconds: float = Field(default=900.0, gt=0)
    rate_limit_margin_seconds: float = Field(default=1.0, ge=0)
    # Posting allows 100 per user per 15 minutes.
    rate_limit: RateLimitConfig = Field(default_factory=lambda: RateLimitConfig(per_second=100 / 900))

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> XConfig:
        if self.enabled:
            missing = [
                key
                for key in ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
                if not getattr(self, key)
            ]
            if missing:
                raise ValueError(f"an enabled X channel needs {', '.join(missing)}")
        return self
