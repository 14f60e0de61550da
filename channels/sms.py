"""SMS and MMS through Twilio. (Skeleton: the adapter is being written.)"""

from __future__ import annotations

from typing import ClassVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from channels.base import InboundMessage, OutboundMessage, SendResult, WebhookChannel
from channels.settings import RateLimitConfig


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

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> SmsConfig:
        if self.enabled:
            if not self.account_sid or not self.auth_token:
                raise ValueError("an enabled SMS channel needs account_sid and auth_token")
            if bool(self.from_number) == bool(self.messaging_service_sid):
                raise ValueError("give exactly one of from_number and messaging_service_sid")
        return self


class SmsChannel(WebhookChannel):
    name: ClassVar[str] = "sms"

    def __init__(self, config: SmsConfig, *, public_url: str) -> None:
        super().__init__(config.rate_limit.to_rate_limit())
        self.config = config
        self.public_url = public_url.rstrip("/")

    def verify(self, request: web.Request, body: bytes) -> bool:
        raise NotImplementedError("being written")

    def parse(self, request: web.Request, body: bytes) -> list[InboundMessage]:
        raise NotImplementedError("being written")

    async def send(self, message: OutboundMessage) -> SendResult:
        raise NotImplementedError("SMS sending is being written")
