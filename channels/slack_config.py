"""The `channels.slack` section: the staff desk's Slack app, checked before anything starts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from channels.settings import RateLimitConfig


class SlackConfig(BaseModel):
    """The `channels.slack` section."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    bot_token: str = ""  # xoxb-..., from the app's "OAuth & Permissions" page
    signing_secret: str = ""  # from the app's "Basic Information" page
    api_base_url: str = "https://slack.com/api/"
    command: str = "/ticket"  # the slash command staff look tickets up with
    note_prefix: str = "note:"  # a thread message starting with it stays internal
    public_prefix: str = "public:"  # ... shows on the ticket's public status page (/status/REFERENCE)
    # chat.postMessage: about 1 message a second per channel, plus a workspace-wide limit (PROVIDERS.md).
    rate_limit: RateLimitConfig = Field(
        default_factory=lambda: RateLimitConfig(per_second=20.0, per_recipient_per_second=1.0)
    )
    request_timeout_seconds: int = Field(default=10, ge=1, le=120)

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> SlackConfig:
        if self.enabled and (not self.bot_token or not self.signing_secret):
            raise ValueError("an enabled Slack channel needs bot_token and signing_secret")
        if not self.command.startswith("/"):
            raise ValueError("command must start with / (e.g. /ticket)")
        if not self.note_prefix.strip():
            raise ValueError("note_prefix must not be empty")
        if not self.public_prefix.strip():
            raise ValueError("public_prefix must not be empty")
        if self.public_prefix.strip().lower() == self.note_prefix.strip().lower():
            raise ValueError("public_prefix must differ from note_prefix")
        return self
