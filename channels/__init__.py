"""Channel adapters: one module per provider, each translating between it and the shared types.

The package itself exports only the shared types: importing it loads no provider's SDK. The
composition root imports the adapters it enables (`bot.provider_channels`), and the config models
(`channels.config`, one `<provider>_config.py` beside each adapter) import no SDK either."""

from channels.base import (
    Attachment,
    BadRequest,
    Button,
    Channel,
    ChannelHost,
    Command,
    ConversationItem,
    ConversationSource,
    DeliveryReport,
    FetchedMedia,
    InboundHandler,
    InboundMessage,
    Location,
    OutboundMessage,
    PermanentSendError,
    RateLimit,
    Receipt,
    SendError,
    SendResult,
    TransientSendError,
    WebhookChannel,
    buttons_as_text,
)

__all__ = [
    "Attachment",
    "BadRequest",
    "Button",
    "Channel",
    "ChannelHost",
    "Command",
    "ConversationItem",
    "ConversationSource",
    "DeliveryReport",
    "FetchedMedia",
    "InboundHandler",
    "InboundMessage",
    "Location",
    "OutboundMessage",
    "PermanentSendError",
    "RateLimit",
    "Receipt",
    "SendError",
    "SendResult",
    "TransientSendError",
    "WebhookChannel",
    "buttons_as_text",
]
