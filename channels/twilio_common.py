"""What SMS and WhatsApp share: Twilio's Messages API, its signed webhooks and its media.

Inbound: Twilio POSTs each message form-encoded to the channel's webhook, signed with the account's
auth token over the exact URL it called (rebuilt from `server.public_url`, never from the request,
which is wrong behind a proxy). We answer an empty TwiML `<Response/>`, so Twilio sends nothing
itself. Delivery reports arrive at the channel's status path, signed the same way; the callback URL
we give Twilio carries our idempotency key, so a report matches even if it overtakes the send's commit.

Outbound: the async Twilio client. A subclass says how a text is cut into messages (`_parts`) and
may add its provider's error codes (`_refusal`). Whether a send the process died in reached Twilio
is asked of Twilio's message list (`find_sent`, twilio_lookup.py). Media: twilio_media.py;
Twilio's keywords (STOP, HELP...): twilio_words.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, ClassVar, Generic, Protocol, TypeVar
from urllib.parse import parse_qsl, urlencode

import aiohttp
from aiohttp import web
from multidict import CIMultiDictProxy, MultiDict
from twilio.base.exceptions import TwilioException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from channels.base import (
    Attachment,
    BadRequest,
    ChannelHost,
    DeliveryReport,
    FetchedMedia,
    InboundMessage,
    OutboundMessage,
    PermanentSendError,
    Receipt,
    SendError,
    SendResult,
    TransientSendError,
    WebhookChannel,
)
from channels.responses import retry_after
from channels.settings import RateLimitConfig
from channels.twilio_lookup import matching, sent_to
from channels.twilio_media import attachments_of, fetch_media
from channels.twilio_words import command_of

log = logging.getLogger("channels.twilio")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

OPTED_OUT = 21610
_REMEMBERED_SENDS = 1000  # keys whose first parts went out, so a retry does not repeat them


# The headers of the last Twilio response in this task: the SDK's exceptions drop them, and a 429's
# Retry-After is worth keeping. A context variable, because sends to several citizens overlap.
_response_headers: contextvars.ContextVar[list[CIMultiDictProxy[str]] | None] = contextvars.ContextVar(
    "twilio_response_headers", default=None
)


async def _remember_headers(
    session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
) -> None:
    holder = _response_headers.get()
    if holder is not None:
        holder.append(params.response.headers)


class TwilioSettings(Protocol):
    """What the shared machinery reads from a Twilio channel's config section (SMS's, WhatsApp's)."""

    @property
    def account_sid(self) -> str: ...
    @property
    def auth_token(self) -> str: ...
    @property
    def from_number(self) -> str: ...
    @property
    def messaging_service_sid(self) -> str: ...
    @property
    def api_base_url(self) -> str: ...
    @property
    def rate_limit(self) -> RateLimitConfig: ...
    @property
    def max_media_bytes(self) -> int: ...
    @property
    def stop_words(self) -> list[str]: ...
    @property
    def status_callbacks(self) -> bool | None: ...
    @property
    def timeout_seconds(self) -> float: ...


ConfigT = TypeVar("ConfigT", bound=TwilioSettings)


class TwilioChannel(WebhookChannel, Generic[ConfigT]):
    """A door through Twilio's Messages API. Subclasses set `name`, `label`, the two paths and `_parts`."""

    fetches_media: ClassVar[bool] = True
    can_find_sent: ClassVar[bool] = True
    label: ClassVar[str]  # the door's name in words people read: "SMS", "WhatsApp"
    webhook_path: ClassVar[str]  # where Twilio posts incoming messages
    status_path: ClassVar[str]  # ... and delivery reports

    def __init__(self, config: ConfigT, *, public_url: str) -> None:
        super().__init__(config.rate_limit.to_rate_limit())
        self.config = config
        self.public_url = public_url.rstrip("/")
        self.validator = RequestValidator(config.auth_token)
        callbacks = config.status_callbacks
        self.status_callbacks = self.public_url.startswith("https://") if callbacks is None else callbacks
        self._http: AsyncTwilioHttpClient | None = None
        self._client: Any = None  # twilio.rest.Client (untyped)
        self._media: aiohttp.ClientSession | None = None
        # Sids of the parts of a long text Twilio already took, by idempotency key: a retry after a
        # failure halfway sends only the rest. In memory: a restart may repeat a part, never lose one.
        self._sent_parts: OrderedDict[str, list[str]] = OrderedDict()

    # --- lifecycle

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.post(self.webhook_path, self.handle_webhook),
            web.post(self.status_path, self.handle_status),
        ]

    async def start(self, host: ChannelHost) -> None:
        await super().start(host)
        if self._client is not None:
            return
        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(_remember_headers)
        self._http = AsyncTwilioHttpClient(trace_configs=[trace])
        client = Client(self.config.account_sid, self.config.auth_token, http_client=self._http)
        # api_base_url is the one knob: TWILIO_EDGE / TWILIO_REGION in the environment would make
        # the SDK rewrite the host (set api_base_url to a regional endpoint instead).
        client.edge = client.region = None
        client.api.base_url = self.config.api_base_url.rstrip("/")
        self._client = client
        self._media = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds))

    async def stop(self) -> None:
        http, media = self._http, self._media
        self._http = self._client = self._media = None
        if http is not None:
            await http.close()
        if media is not None:
            await media.close()

    # --- inbound

    def _signed_urls(self, request: web.Request) -> list[str]:
        """The URL Twilio called and signed: the public URL, the path and the query as given to
        Twilio. The server sees the query normalised (%3A arrives as ':'), so the form that
        `urlencode` gives, as in our status callback URLs, is tried as well."""
        base = f"{self.public_url}{request.rel_url.raw_path}"
        query = request.rel_url.raw_query_string
        if not query:
            return [base]
        return [f"{base}?{query}", f"{base}?{urlencode(parse_qsl(query, keep_blank_values=True))}"]

    @staticmethod
    def _form(request: web.Request, body: bytes) -> MultiDict[str]:
        if request.content_type != "application/x-www-form-urlencoded":
            raise BadRequest(f"expected a form, got {request.content_type or 'no content type'}")
        try:
            return MultiDict(
                parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"the form cannot be read: {exc}") from exc

    def verify(self, request: web.Request, body: bytes) -> bool:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            return False
        try:
            form = self._form(request, body)
        except BadRequest:
            return False
        return any(self.validator.validate(url, form, signature) for url in self._signed_urls(request))

    def parse(self, request: web.Request, body: bytes) -> list[InboundMessage]:
        form = self._form(request, body)
        missing = [name for name in ("MessageSid", "From", "AccountSid") if not form.get(name)]
        if missing:
            raise BadRequest(f"missing {', '.join(missing)}")
        if form["AccountSid"] != self.config.account_sid:
            raise BadRequest("the message is for another Twilio account")
        text = form.get("Body", "")
        return [
            InboundMessage(
                channel=self.name,
                sender=form["From"],
                text=text,
                provider_message_id=form["MessageSid"],
                received_at=datetime.now(UTC),
                attachments=attachments_of(form),
                raw={key: form[key] for key in form},  # every field that arrived, new ones included
                command=command_of(text, self.config.stop_words),
            )
        ]

    async def acknowledge(
        self, messages: Sequence[InboundMessage], receipts: Sequence[Receipt]
    ) -> web.StreamResponse:
        # Empty TwiML: Twilio sends no reply of its own; ours go out through the dispatcher.
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    async def handle_status(self, request: web.Request) -> web.StreamResponse:
        """A delivery status callback: 204 once handed over (matched or not), 403 if forged."""
        body = await self.read_verified(request)
        if isinstance(body, web.Response):
            return body
        try:
            form = self._form(request, body)
        except BadRequest as exc:
            return web.json_response({"error": str(exc)}, status=400)
        sid, status = form.get("MessageSid"), form.get("MessageStatus") or form.get("SmsStatus")
        if not sid or not status:
            return web.json_response({"error": "missing MessageSid or MessageStatus"}, status=400)
        key = request.query.get("key")
        part, parts = request.query.get("part"), request.query.get("parts")
        report = DeliveryReport(
            channel=self.name,
            status=status,
            at=datetime.now(UTC),
            idempotency_key=key,
            provider_message_id=sid,
            error=" ".join(filter(None, (form.get("ErrorCode"), form.get("ErrorMessage")))) or None,
        )
        # One outgoing message sent as several texts: the last part speaks for all, unless an
        # earlier one failed (that must reach the ticket).
        if part is not None and part != parts and not report.failed:
            return web.Response(status=204)
        try:
            matched = await self.host.delivery_report(report)
        except Exception:
            log.exception("%s: could not record a delivery report for %s", self.name, sid)
            return web.json_response({"error": "temporarily unavailable"}, status=503)
        if not matched:
            log.info(
                "%s: a status callback (%s for %s, key %s) matches no outgoing message",
                self.name,
                status,
                sid,
                key,
            )
        return web.Response(status=204)

    # --- outbound

    def _parts(self, message: OutboundMessage) -> list[str]:
        """The texts one outgoing message is sent as (each within the provider's limits)."""
        raise NotImplementedError

    def _content(self, message: OutboundMessage) -> tuple[list[str], list[str]]:
        """What `send` hands Twilio: the body of each message (a long text is several) and the media
        URLs, which go with the first. No text: one message of media alone, without a body."""
        media = [a.url for a in message.attachments if a.url.startswith(("https://", "http://"))]
        return self._parts(message), media

    def _remembered(self, key: str) -> list[str]:
        """The sids of the parts of `key` that Twilio took (kept for the most recent keys)."""
        sids = self._sent_parts.setdefault(key, [])
        self._sent_parts.move_to_end(key)
        while len(self._sent_parts) > _REMEMBERED_SENDS:
            self._sent_parts.popitem(last=False)
        return sids

    def _callback_url(self, key: str, part: int, parts: int) -> str:
        query = {"key": key} if parts == 1 else {"key": key, "part": str(part), "parts": str(parts)}
        return f"{self.public_url}{self.status_path}?{urlencode(query)}"

    async def send(self, message: OutboundMessage) -> SendResult:
        client = self._client
        if client is None:
            raise TransientSendError(f"the {self.label} channel is not running")
        parts, media = self._content(message)
        if not parts and not media:
            raise PermanentSendError("nothing to send: no text and no media URL")
        sids = self._remembered(message.idempotency_key)
        for index in range(len(sids), max(1, len(parts))):
            sids.append(await self._create(client, message, parts, index, media))
        return SendResult(provider_message_id=sids[0])

    def on_sent(self, message: OutboundMessage) -> None:
        self._sent_parts.pop(message.idempotency_key, None)

    async def _create(
        self, client: Any, message: OutboundMessage, parts: list[str], index: int, media: list[str]
    ) -> str:
        """One Twilio message (part `index` of the text); returns its sid or raises a SendError."""
        arguments = self._addressed(message, part=index + 1, parts=max(1, len(parts)))
        if parts:
            arguments["body"] = parts[index]
        if media and index == 0:
            arguments["media_url"] = media
        return await self._post(client, arguments)

    def _addressed(self, message: OutboundMessage, *, part: int = 1, parts: int = 1) -> dict[str, Any]:
        """The arguments every message to the recipient has: to, our sender, the status callback."""
        arguments: dict[str, Any] = {"to": message.recipient}
        if self.config.from_number:
            arguments["from_"] = self.config.from_number
        else:
            arguments["messaging_service_sid"] = self.config.messaging_service_sid
        if self.status_callbacks:
            arguments["status_callback"] = self._callback_url(message.idempotency_key, part, parts)
        return arguments

    async def _post(self, client: Any, arguments: dict[str, Any]) -> str:
        """Create one message at Twilio; its sid, or a SendError."""
        async with self._calling():
            created = await client.messages.create_async(**arguments)
        sid: str = created.sid
        return sid

    @contextlib.asynccontextmanager
    async def _calling(self) -> AsyncIterator[None]:
        """One exchange with Twilio (a send, a listing) within the timeout, its failures as SendErrors."""
        headers: list[CIMultiDictProxy[str]] = []
        token = _response_headers.set(headers)
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                yield
        except TwilioException as exc:
            raise self._send_error(exc, headers[-1] if headers else None) from exc
        except TimeoutError as exc:
            raise TransientSendError(f"Twilio did not answer within {self.config.timeout_seconds}s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TransientSendError(f"Twilio could not be reached: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:  # a 2xx whose body is not the JSON expected
            raise TransientSendError(f"Twilio's answer could not be read: {exc}") from exc
        finally:
            _response_headers.reset(token)

    async def find_sent(self, message: OutboundMessage, *, since: datetime) -> SendResult | None:
        """Whether `message` reached Twilio since the attempt began, by its text (twilio_lookup.py).
        Every part there: the first one's sid, as `send` returns it. Only the first few: they are
        remembered, so the `send` that follows sends just the rest, and None is returned."""
        client = self._client
        if client is None:
            raise TransientSendError(f"the {self.label} channel is not running")
        key = message.idempotency_key
        parts, media = self._content(message)
        if not parts and not media:
            return None  # `send` refuses it: nothing can have gone out
        bodies = parts or [""]
        sids = list(self._sent_parts.get(key, ()))  # parts this process saw Twilio take
        if len(sids) < len(bodies):
            async with self._calling():
                listed = await sent_to(client, self.config, message.recipient, since)
            sids += matching(listed, bodies[len(sids) :], since, taken=sids)
        if len(sids) == len(bodies):
            self._sent_parts.pop(key, None)
            return SendResult(provider_message_id=sids[0])
        if sids:
            log.info(
                "%s: %d of %d parts of %s reached Twilio; a send sends the rest",
                self.name,
                len(sids),
                len(bodies),
                key,
            )
            self._remembered(key)[:] = sids
        return None

    # --- media

    async def fetch_media(self, attachment: Attachment) -> FetchedMedia:
        session = self._media
        if session is None:
            raise TransientSendError(f"the {self.label} channel is not running")
        return await fetch_media(session, self.config, attachment)

    # --- errors

    def _send_error(self, exc: TwilioException, headers: CIMultiDictProxy[str] | None) -> SendError:
        status: int = getattr(exc, "status", 0) or 0
        if not status and len(exc.args) > 1:  # a list page: TwilioException("Unable to fetch page", response)
            status = int(getattr(exc.args[1], "status_code", 0) or 0)
        code = getattr(exc, "code", None)
        detail = getattr(exc, "msg", "") or getattr(exc, "detail", "") or (exc.args[0] if exc.args else exc)
        text = f"Twilio {status}{f' error {code}' if code else ''}: {detail}"
        if status == 429:
            return TransientSendError(text, retry_after=retry_after(headers))
        if status >= 500 or status == 0:
            return TransientSendError(text)
        if status == 401:
            # Wrong or rotated credentials: every send fails until an operator fixes them, so keep
            # the messages (retried until give_up_after_hours) rather than drop each at once.
            log.error(
                "%s: Twilio refused the credentials; check the account_sid and auth_token of channels.%s",
                self.name,
                self.name,
            )
            return TransientSendError(text)
        if isinstance(code, int) and (refusal := self._refusal(code, text, headers)) is not None:
            return refusal
        return PermanentSendError(text)

    def _refusal(self, code: int, text: str, headers: CIMultiDictProxy[str] | None) -> SendError | None:
        """What Twilio's error `code` on a 4xx means for this door, or None for "never works"."""
        if code == OPTED_OUT:
            return PermanentSendError(f"the recipient opted out (STOP): {text}")
        return None
