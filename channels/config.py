from pydantic import BaseModel, ConfigDict, Field

from channels.kakao_config import KakaoConfig
from channels.mail_config import EmailConfig
from channels.slack_config import SlackConfig
from channels.sms_config import SmsConfig
from channels.telegram_config import TelegramConfig
from channels.webchat_config import WebchatConfig
from channels.whatsapp_config import WhatsappConfig
from channels.x_config import XConfig


class ChannelsConfig(BaseModel):
    """The `channels` section: one key per provider, each owned by its adapter's module."""

    model_config = ConfigDict(extra="forbid")

    webchat: WebchatConfig = Field(default_factory=WebchatConfig)
    sms: SmsConfig = Field(default_factory=SmsConfig)
    telegram: TelegramConfig = Field(default_factory=TelegramConfig)
    x: XConfig = Field(default_factory=XConfig)
    whatsapp: WhatsappConfig = Field(default_factory=WhatsappConfig)
    kakao: KakaoConfig = Field(default_factory=KakaoConfig)
    email: EmailConfig = Field(default_factory=EmailConfig)
    slack: SlackConfig = Field(default_factory=SlackConfig)  # the staff desk
