from pydantic import BaseModel, ConfigDict, Field

from channels.webchat import WebchatConfig


class ChannelsConfig(BaseModel):
    """The `channels` section: one key per provider, each owned by its adapter's module."""

    model_config = ConfigDict(extra="forbid")

    webchat: WebchatConfig = Field(default_factory=WebchatConfig)
