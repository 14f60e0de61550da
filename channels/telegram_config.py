"""The `channels.telegram` section: the Bot API, checked before anything starts."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from channels.settings import RateLimitConfig

_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class TelegramConfig(BaseModel):
    """The `channels.telegram` section."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    token: str = ""
    webhook_secret: str = ""
    mode: Literal["webhook", "polling"] = "webhook"  # polling: for a city without a public URL
    set_webhook: bool = True  # register public_url/webhooks/telegram with Telegram at start-up
    api_base_url: str = "https://api.telegram.org"
    poll_timeout_seconds: int = Field(default=30, ge=0, le=50)
    # About 1 message a second per chat and 30 a second overall: PROVIDERS.md.
    rate_limit: RateLimitConfig = Field(
        default_factory=lambda: RateLimitConfig(per_second=30.0, per_recipient_per_second=1.0)
    )
    max_media_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    # Every Bot API call gives up after this long (a long poll after its own timeout plus this), so a
    # hanging API delays a send and never holds it.
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    connection_pool_size: int = Field(default=16, ge=1, le=256)
    # Waiting between failed polls or webhook registrations: doubles from the first to the second.
    backoff_seconds: float = Field(default=1.0, gt=0)
    backoff_max_seconds: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> TelegramConfig:
        if self.enabled:
            if not self.token:
                raise ValueError("an enabled Telegram channel needs token")
            if self.mode == "webhook" and not _SECRET.match(self.webhook_secret):
                raise ValueError("webhook mode needs webhook_secret: 1-256 characters of A-Z a-z 0-9 _ -")
        return self
