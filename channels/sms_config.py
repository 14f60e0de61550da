"""The `channels.sms` section: Twilio's SMS, checked before anything starts."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

from channels.settings import RateLimitConfig

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_SENDER = re.compile(r"^(\+[1-9]\d{1,14}|\d{3,8})$")  # E.164, or a short code


class SmsConfig(BaseModel):
    """The `channels.sms` section."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    account_sid: str = ""
    auth_token: str = ""
    from_number: str = ""  # E.164, e.g. +15005550006; or a messaging service:
    messaging_service_sid: str = ""
    api_base_url: str = "https://api.twilio.com"
    # A long code sends one segment a second (toll-free 3, short code 100): PROVIDERS.md.
    rate_limit: RateLimitConfig = Field(default_factory=lambda: RateLimitConfig(per_second=1.0))
    max_segments: int = Field(default=10, ge=1, le=10, description="a longer text goes as several messages")
    max_media_bytes: int = Field(default=5 * 1024 * 1024, ge=1)
    stop_words: list[str] = Field(default_factory=lambda: ["수신거부", "수신 거부"])  # besides Twilio's own
    # Ask Twilio for delivery reports. None: only when server.public_url is https, since Twilio
    # cannot call a plain-http or localhost URL; true/false force it on or off.
    status_callbacks: bool | None = None
    # One Twilio API call or one media download may take this long before it counts as failed
    # (and is retried): the SDK's own default would wait five minutes.
    timeout_seconds: float = Field(default=15.0, gt=0, le=300)

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> SmsConfig:
        if self.enabled:
            if not self.account_sid or not self.auth_token:
                raise ValueError("an enabled SMS channel needs account_sid and auth_token")
            if bool(self.from_number) == bool(self.messaging_service_sid):
                raise ValueError("give exactly one of from_number and messaging_service_sid")
            if not _ACCOUNT_SID.match(self.account_sid):
                raise ValueError("account_sid must be AC followed by 32 hex digits (Twilio console)")
            if self.from_number and not _SENDER.match(self.from_number):
                raise ValueError("from_number must be E.164 (e.g. +15005550006) or a short code")
            if self.messaging_service_sid and not _SERVICE_SID.match(self.messaging_service_sid):
                raise ValueError("messaging_service_sid must be MG followed by 32 hex digits")
        return self
