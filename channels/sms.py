"""SMS and MMS through Twilio.

Inbound: Twilio POSTs each message form-encoded to `/webhooks/sms`, signed with the account's auth
token over the exact URL it called; delivery reports arrive at `/webhooks/sms/status`. What SMS
shares with WhatsApp (Twilio's Messages API, signatures, media, `find_sent`) is in twilio_common.py
and the twilio_*.py modules beside it.

Outbound: a text longer than `max_segments` goes as several messages cut at paragraph, sentence,
then word boundaries; the dispatcher paces by segments (`send_cost`).
"""

from __future__ import annotations

from typing import ClassVar

from multidict import CIMultiDictProxy

from channels.base import OutboundMessage, PermanentSendError, SendError, buttons_as_text
from channels.segments import sms_segments
from channels.sms_config import SmsConfig
from channels.splitting import split_text
from channels.twilio_common import EMPTY_TWIML, OPTED_OUT, TwilioChannel
from channels.twilio_words import HELP_WORDS, STOP_WORDS, UNSTOP_WORDS, command_of

__all__ = [
    "EMPTY_TWIML",
    "HELP_WORDS",
    "OPTED_OUT",
    "STATUS_PATH",
    "STOP_WORDS",
    "UNSTOP_WORDS",
    "WEBHOOK_PATH",
    "SmsChannel",
    "command_of",
]

WEBHOOK_PATH = "/webhooks/sms"
STATUS_PATH = "/webhooks/sms/status"
INVALID_NUMBER, NOT_MOBILE = 21211, 21614


class SmsChannel(TwilioChannel[SmsConfig]):
    name: ClassVar[str] = "sms"
    label: ClassVar[str] = "SMS"
    webhook_path: ClassVar[str] = WEBHOOK_PATH
    status_path: ClassVar[str] = STATUS_PATH

    def _parts(self, message: OutboundMessage) -> list[str]:
        return split_text(
            buttons_as_text(message.text, message.buttons), self.config.max_segments, sms_segments
        )

    def send_cost(self, message: OutboundMessage) -> int:
        return max(1, sum(sms_segments(part) for part in self._parts(message)))

    def _refusal(self, code: int, text: str, headers: CIMultiDictProxy[str] | None) -> SendError | None:
        if code in (INVALID_NUMBER, NOT_MOBILE):
            return PermanentSendError(f"not a number that can receive SMS: {text}")
        return super()._refusal(code, text, headers)
