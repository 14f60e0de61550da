from pydantic import BaseModel, ConfigDict, Field

from channels.slack_config import SlackConfig
from channels.sms_config import SmsConfig
from channels.telegram_config import TelegramConfig
from channels.webchat_config import WebchatConfig
from channels.x_config import XConfig


class ChannelsConfig(BaseModel):
    """The `channels` section: one key per provider, each owned by its adapter's module."""

    model_config = ConfigDict(extra="forbid")

    webchat: WebchatConfig = Field(default_factory=WebchatConfig)
    sms: SmsConfig = Field(default_factory=SmsConfig)
    telegram: TelegramConfig = Field(default_factory=TelegramConfig)
    x: XConfig = Field(default_factory=XConfig)
    slack: SlackConfig = Field(default_factory=SlackConfig)  # the staff desk
