"""X (Twitter) through tweepy's API v2 client. (Skeleton: the adapter is being written.)"""

from __future__ import annotations

from typing import ClassVar, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from channels.base import InboundMessage, OutboundMessage, SendResult, WebhookChannel
from channels.settings import RateLimitConfig


class XConfig(BaseModel):
    """The `channels.x` section."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    consumer_key: str = ""
    consumer_secret: str = ""
    access_token: str = ""
    access_token_secret: str = ""
    mode: Literal["polling", "webhook"] = "polling"  # webhook: Account Activity API, where the city has it
    api_base_url: str = "https://api.twitter.com"
    # Every call costs money and mentions allow 450 calls per 15 minutes: poll gently (PROVIDERS.md).
    mentions_poll_seconds: float = Field(default=60.0, gt=0)
    dm_poll_seconds: float = Field(default=90.0, gt=0)
    poll_direct_messages: bool = True
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


class XChannel(WebhookChannel):
    name: ClassVar[str] = "x"

    def __init__(self, config: XConfig, *, public_url: str) -> None:
        super().__init__(config.rate_limit.to_rate_limit())
        self.config = config
        self.public_url = public_url.rstrip("/")

    def verify(self, request: web.Request, body: bytes) -> bool:
        raise NotImplementedError("being written")

    def parse(self, request: web.Request, body: bytes) -> list[InboundMessage]:
        raise NotImplementedError("being written")

    async def send(self, message: OutboundMessage) -> SendResult:
        raise NotImplementedError("X sending is being written")
