"""WhatsApp through Twilio: the Messages API, signatures and media that SMS uses (twilio_common.py),
with WhatsApp's rule on top: free text only within 24 hours of the citizen's last message.

Inbound: Twilio POSTs each message to `/webhooks/whatsapp` (delivery reports to
`/webhooks/whatsapp/status`), from `whatsapp:+E.164`, which is the contact's address. Once a message
is committed, the adapter remembers when the citizen wrote (`host.remember`, and in memory).

Outbound: within the window (less a safety margin for the clocks) a text goes as free text, cut at
Twilio's 1,600-character body limit. Outside it, or when Twilio answers 63016 all the same, the
notice goes as the city's approved template for it (`content_templates`: a Content SID and what
fills its {{1}}, {{2}}, ...); a message with no template fails for good with the reason, which the
dispatcher tells the staff desk. Never a silent drop.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from aiohttp import web
from multidict import CIMultiDictProxy, MultiDict

from channels.base import (
    CITIZEN_MEMORY,
    InboundMessage,
    Location,
    OutboundMessage,
    PermanentSendError,
    Receipt,
    SendError,
    SendResult,
    TransientSendError,
    as_utc,
    buttons_as_text,
)
from channels.responses import retry_after
from channels.splitting import split_text
from channels.twilio_common import TwilioChannel
from channels.whatsapp_config import ContentTemplate, WhatsappConfig

log = logging.getLogger("channels.whatsapp")

WEBHOOK_PATH = "/webhooks/whatsapp"
STATUS_PATH = "/webhooks/whatsapp/status"
MAX_BODY = 1600  # characters in one Twilio Body
# WhatsApp's customer service window, less a margin: our clock, Twilio's and the time a message
# takes to reach us differ, and a free text sent a minute too late fails (63016) instead of going.
WINDOW = timedelta(hours=24)
MARGIN = timedelta(minutes=10)
MAX_VARIABLE = 300  # characters of one template variable; a whole template must stay under 1,024
_REMEMBER_EVERY = timedelta(minutes=1)  # a citizen writing in a burst is stored once
_KNOWN_CONTACTS = 10_000  # last-message times kept in memory (the store has them all)

# Twilio's error codes for WhatsApp (https://www.twilio.com/docs/api/errors/NNNNN).
OUTSIDE_WINDOW = 63016  # free text after the 24 hours: only a template may go
RATE_LIMITED = 63018  # the sender's or the business's messaging limit: later
NOT_ON_WHATSAPP = 63024  # Meta says the recipient is no (current) WhatsApp user
NO_SUCH_ADDRESS = 63003  # the channel could not find the To address
WITHHELD = 63032  # Meta holds back business messages to this user (its limits and experiments)
PROVIDER_FAILED = 63012  # WhatsApp's own service failed
INVALID_TO = 21211
_RATE_WAIT = 60.0  # seconds to wait after 63018 when Twilio gives no Retry-After


class WindowClosed(PermanentSendError):
    """Twilio refused free text: the 24 hours since the citizen's last message are over (63016)."""


class WhatsappChannel(TwilioChannel[WhatsappConfig]):
    name: ClassVar[str] = "whatsapp"
    label: ClassVar[str] = "WhatsApp"
    webhook_path: ClassVar[str] = WEBHOOK_PATH
    status_path: ClassVar[str] = STATUS_PATH

    def __init__(
        self,
        config: WhatsappConfig,
        *,
        public_url: str,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(config, public_url=public_url)
        self.clock = clock or (lambda: datetime.now(UTC))
        # When each citizen last wrote, as far as this process knows (the store knows for all
        # instances); and the last-message time Twilio said 63016 to, so we stop trying free text.
        self._wrote: OrderedDict[str, datetime] = OrderedDict()
        self._stored: dict[str, datetime] = {}
        self._refused: dict[str, datetime] = {}

    # --- inbound

    def parse(self, request: web.Request, body: bytes) -> list[InboundMessage]:
        messages = super().parse(request, body)
        form = self._form(request, body)
        return [
            replace(m, sender_name=form.get("ProfileName") or None, location=_location(form))
            for m in messages
        ]

    async def acknowledge(
        self, messages: Sequence[InboundMessage], receipts: Sequence[Receipt]
    ) -> web.StreamResponse:
        # A retry of a stored message is no new message: it must not reopen the window.
        for message, receipt in zip(messages, receipts, strict=True):
            if not receipt.duplicate:
                await self._note_wrote(message.sender, self.clock())
        return await super().acknowledge(messages, receipts)

    async def _note_wrote(self, address: str, at: datetime) -> None:
        self._cache(address, at)
        self._refused.pop(address, None)  # a new message opens the window, whatever Twilio said before
        stored = self._stored.get(address)
        if stored is not None and at - stored < _REMEMBER_EVERY:
            return  # an older time in the store only closes the window sooner: the safe side
        try:
            await self.host.remember(self.name, self._key(address), at.isoformat())
        except Exception:  # the message is committed; without the time, a reply goes as a template
            log.exception("whatsapp: could not remember when a citizen wrote")
            return
        self._stored[address] = at

    def _cache(self, address: str, at: datetime) -> None:
        known = self._wrote.get(address)
        self._wrote[address] = at if known is None else max(known, at)
        self._wrote.move_to_end(address)
        while len(self._wrote) > _KNOWN_CONTACTS:
            dropped, _ = self._wrote.popitem(last=False)
            self._stored.pop(dropped, None)
            self._refused.pop(dropped, None)

    def _key(self, address: str) -> str:
        """The memory's name for a citizen: keyed, so the store holds no phone number in clear; a
        `citizen:` name, which the retention purge forgets."""
        digest = hmac.new(self.config.auth_token.encode(), address.encode(), hashlib.sha256).hexdigest()
        return f"{CITIZEN_MEMORY}wrote:{digest[:32]}"

    # --- the 24-hour window

    async def last_wrote(self, address: str) -> datetime | None:
        """When the citizen last wrote: from memory when that is recent enough, else from the store
        (another instance may have taken their latest message)."""
        cached = self._wrote.get(address)
        if cached is not None and self._open(cached):
            return cached
        try:
            value = await self.host.recall(self.name, self._key(address))
        except Exception as exc:
            raise TransientSendError(f"could not read when the citizen last wrote: {exc}") from exc
        if value:
            try:
                self._cache(address, as_utc(datetime.fromisoformat(value)))
            except ValueError:
                log.warning("whatsapp: a stored last-message time cannot be read: %r", value[:40])
        return self._wrote.get(address)

    def _open(self, wrote: datetime) -> bool:
        return self.clock() - wrote < WINDOW - MARGIN

    async def in_window(self, address: str) -> bool:
        """Whether free text may go to `address` now. Unknown is outside: a template is the safe side."""
        wrote = await self.last_wrote(address)
        refused = self._refused.get(address)
        return wrote is not None and self._open(wrote) and (refused is None or wrote > refused)

    # --- outbound

    def _parts(self, message: OutboundMessage) -> list[str]:
        return split_text(buttons_as_text(message.text, message.buttons), MAX_BODY)

    def send_cost(self, message: OutboundMessage) -> int:
        return 1  # WhatsApp counts messages, and a text over 1,600 characters is rare

    async def send(self, message: OutboundMessage) -> SendResult:
        if self._client is None:
            raise TransientSendError("the WhatsApp channel is not running")
        if not await self.in_window(message.recipient):
            return await self._send_template(message, "outside WhatsApp's 24-hour window")
        try:
            return replace(await super().send(message), route="text")
        except WindowClosed as exc:
            # Twilio's clock says the window closed: believe it until the citizen writes again.
            wrote = self._wrote.get(message.recipient)
            if wrote is not None:
                self._refused[message.recipient] = wrote
            log.info("whatsapp: Twilio refused free text to a citizen (63016); trying the template")
            return await self._send_template(message, f"outside WhatsApp's 24-hour window ({exc})")

    async def _send_template(self, message: OutboundMessage, why: str) -> SendResult:
        template = self.config.template_for(message.notice)
        if template is None:
            what = f"notice {message.notice!r}" if message.notice else "a reply that is no notice"
            raise PermanentSendError(
                f"{why}, and {what} has no approved template (channels.whatsapp.content_templates)"
            )
        if message.attachments:
            log.info("whatsapp: a template cannot carry attachments; sending the notice without them")
        arguments = self._addressed(message)
        arguments["content_sid"] = template.sid
        arguments["content_variables"] = content_variables(template, message.variables or {})
        sid = await self._post(self._client, arguments)
        return SendResult(provider_message_id=sid, route="template")

    def _refusal(self, code: int, text: str, headers: CIMultiDictProxy[str] | None) -> SendError | None:
        if code == OUTSIDE_WINDOW:
            return WindowClosed(text)
        if code == RATE_LIMITED:
            return TransientSendError(
                f"WhatsApp's messaging limit: {text}", retry_after=retry_after(headers) or _RATE_WAIT
            )
        if code == PROVIDER_FAILED:
            return TransientSendError(f"WhatsApp's service failed: {text}")
        if code in (NOT_ON_WHATSAPP, NO_SUCH_ADDRESS, INVALID_TO):
            return PermanentSendError(f"not a WhatsApp user (or their app needs an update): {text}")
        if code == WITHHELD:
            return PermanentSendError(f"WhatsApp withheld the message from this user (Meta's limits): {text}")
        return super()._refusal(code, text, headers)


def content_variables(template: ContentTemplate, values: dict[str, str]) -> str:
    """ContentVariables for a template: {"1": ..., "2": ...} from the notice's values by name."""
    return json.dumps(
        {str(n): _variable(values.get(name, "")) for n, name in enumerate(template.variables, start=1)},
        ensure_ascii=False,
    )


def _variable(value: str) -> str:
    # WhatsApp refuses a variable with a line break, a tab or a run of spaces, and an empty one
    # (Twilio's 63013); a long staff reply is cut, as the whole template must stay under 1,024.
    flat = " ".join(value.split())
    if len(flat) > MAX_VARIABLE:
        flat = flat[: MAX_VARIABLE - 1].rstrip() + "…"
    return flat or "-"


def _location(form: MultiDict[str]) -> Location | None:
    """A shared location (WhatsApp sends Latitude, Longitude and maybe Address or Label)."""
    try:
        latitude, longitude = float(form.get("Latitude") or "nan"), float(form.get("Longitude") or "nan")
    except ValueError:
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):  # NaN fails both
        return None
    return Location(latitude, longitude, label=form.get("Address") or form.get("Label") or None)
