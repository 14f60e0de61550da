"""The `channels.webchat` section: the chat on the city's web page."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WebchatConfig(BaseModel):
    """The `channels.webchat` section."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    max_text_chars: int = Field(default=2000, ge=1, le=20_000)
    long_poll_seconds: float = Field(default=25.0, gt=0, le=120)
    messages_per_minute: int = Field(default=20, ge=1)
    history_limit: int = Field(default=200, ge=1)
