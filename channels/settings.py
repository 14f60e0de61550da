"""Config pieces every provider section shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from channels.base import RateLimit


class RateLimitConfig(BaseModel):
    """How fast the dispatcher may send on a channel: overall and to one recipient (None: no limit).
    For SMS the unit is a segment, so a 3-segment text uses three."""

    model_config = ConfigDict(extra="forbid")

    per_second: float | None = Field(default=None, gt=0)
    per_recipient_per_second: float | None = Field(default=None, gt=0)

    def to_rate_limit(self) -> RateLimit:
        return RateLimit(per_second=self.per_second, per_recipient_per_second=self.per_recipient_per_second)
