"""The shared message types and the contract every channel adapter keeps.

An adapter translates: a provider's request into `InboundMessage`s, an `OutboundMessage` into a
provider call. It never touches the store and never decides anything; it hands what it parsed to
the `ChannelHost` it was started with (`host.intake`, the router's intake) and acknowledges the
provider only after that returned, i.e. after the message was committed.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Protocol

from aiohttp import web

from channels.desk import DeskItem
from channels.desk import from_json as desk_from_json
from channels.desk import to_json as desk_to_json

log = logging.getLogger("channels")


@dataclass(frozen=True)
class Attachment:
    """A photo or file. Inbound, `url` is the provider's reference that the channel's `fetch_media`
    understands (a Twilio media URL, `telegram-file:<file_id>`); the store keeps a copy and sets
    `media_id`, so a link that expires loses nothing."""

    url: str
    content_type: str | None = None
    filename: str | None = None
    media_id: int | None = None


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    label: str | None = None


@dataclass(frozen=True)
class Button:
    label: str
    value: str


Command = Literal["start", "help", "stop", "unstop", "status"]


@dataclass(frozen=True)
class InboundMessage:
    channel: str
    sender: str  # the citizen's address on this channel: phone number, chat id, session token
    text: str
    provider_message_id: str  # unique per channel; a provider's retry carries the same id
    received_at: datetime
    attachments: tuple[Attachment, ...] = ()
    location: Location | None = None
    language_hint: str | None = None
    sender_name: str | None = None
    reply_to: str | None = None  # the provider's thread or reply reference
    raw: dict[str, Any] | None = None
    # What the adapter recognised in its provider's terms (Twilio's STOP words, Telegram's /start):
    # "start", "help", "stop", "unstop" or "status". The router decides what each means.
    command: Command | None = None
    # Seen by everyone (an X mention): answered in public only with the reference and an invitation
    # to continue privately; everything else goes to the sender privately.
    public: bool = False
    # The ticket the provider's thread names (an e-mail's subject or In-Reply-To): the message joins
    # it when it is this citizen's, whatever their latest ticket is.
    reference: str | None = None
    # The provider holds its request open for the city's answer (a Kakao skill call) this many
    # seconds: the replies intake queues come back in the `Receipt` and wait that long for the
    # channel to say it gave them (`ChannelHost.answered`) before the dispatcher sends them itself.
    answer_window_seconds: float | None = None
    # The department the citizen's form already chose (an Open311 service's): the message is a
    # report for it, forwarded there and never answered from the FAQ (unless it is sensitive).
    department: str | None = None


@dataclass(frozen=True)
class OutboundMessage:
    channel: str
    recipient: str
    text: str
    idempotency_key: str
    attachments: tuple[Attachment, ...] = ()
    buttons: tuple[Button, ...] = ()
    reply_to: str | None = None
    # For a staff channel (the Slack desk): what to show (channels/desk.py), which the adapter
    # renders; `text` is the plain fallback.
    desk: DeskItem | None = None
    # Which notice of router/notices.yaml this is ("received", "staff_reply", "resolved", ...; "answer"
    # for an FAQ answer), and the values it was filled with ("reference", "department", "due",
    # "status", "text"): a door that may only push approved templates (WhatsApp outside its 24 hours)
    # or only some notices (Kakao's paid Event API) decides with these. None: a plain reply.
    notice: str | None = None
    variables: dict[str, str] | None = None

    def to_payload(self) -> dict[str, Any]:
        """The JSON kept in the outbox row."""
        payload = asdict(replace(self, desk=None))
        payload["desk"] = desk_to_json(self.desk) if self.desk is not None else None
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> OutboundMessage:
        return cls(
            channel=payload["channel"],
            recipient=payload["recipient"],
            text=payload["text"],
            idempotency_key=payload["idempotency_key"],
            attachments=tuple(Attachment(**a) for a in payload.get("attachments", ())),
            buttons=tuple(Button(**b) for b in payload.get("buttons", ())),
            reply_to=payload.get("reply_to"),
            desk=desk_from_json(payload["desk"]) if payload.get("desk") else None,
            notice=payload.get("notice"),
            variables=payload.get("variables"),
        )


@dataclass(frozen=True)
class Receipt:
    """What intake tells the adapter once the message is committed."""

    duplicate: bool
    reference: str | None = None
    # For a message with `answer_window_seconds`: what the city answered, to give in the response.
    replies: tuple[OutboundMessage, ...] = ()


@dataclass(frozen=True)
class ConversationItem:
    """One message of a conversation as the citizen may see it (for channels that pull history)."""

    id: str
    sender: Literal["citizen", "city"]
    text: str
    at: datetime
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class DeliveryReport:
    """A provider's word on an outgoing message (a Twilio status callback), found by our key or its id."""

    channel: str
    status: str  # the provider's status, e.g. queued, sent, delivered, undelivered, failed, read
    at: datetime
    idempotency_key: str | None = None
    provider_message_id: str | None = None
    error: str | None = None  # the provider's error code and text, when it failed

    @property
    def failed(self) -> bool:
        return self.status in ("undelivered", "failed")


@dataclass(frozen=True)
class FetchedMedia:
    data: bytes
    content_type: str


StaffActionKind = Literal[
    "reply", "note", "public_note", "claim", "resolve", "reassign", "review_send", "review_edit", "lookup"
]


@dataclass(frozen=True)
class StaffAction:
    """Something a staff member did in a staff channel (a thread reply, a button, a command), in
    neutral terms; the router decides whether they may and what it means."""

    kind: StaffActionKind
    staff_id: str  # qualified by the channel: "slack:U123"
    staff_name: str
    reference: str | None = None
    text: str = ""  # a reply, a note, a resolution, an edited answer
    department: str | None = None  # reassign: where to
    reason: str = ""
    entry: str | None = None  # review_send: the FAQ entry chosen
    place: str | None = None  # where it was done (the staff channel's id), for permission checks
    source_id: str | None = None  # the provider's id of the staff message, to mark its delivery on


@dataclass(frozen=True)
class StaffResult:
    """What to tell the staff member (privately): done, or why not; `lines` for a lookup."""

    ok: bool
    message: str
    lines: tuple[str, ...] = ()


InboundHandler = Callable[[InboundMessage], Awaitable[Receipt]]


class ChannelHost(Protocol):
    """What a running channel may ask of the bot (the router implements it). Channels never touch
    the store themselves: what a channel must remember across restarts (a poller's position, where
    the desk's cards are, which events were handled) it keeps through `remember` / `recall`, a small
    key-value memory per channel in the store."""

    async def intake(self, message: InboundMessage) -> Receipt: ...

    async def delivery_report(self, report: DeliveryReport) -> bool:
        """Record a provider's delivery status; False when no outgoing message matches it."""
        ...

    async def recall(self, channel: str, name: str) -> str | None: ...

    async def remember(self, channel: str, name: str, value: str) -> None:
        """Keep `value` under `name` (up to 255 characters; the value any length). A name that starts
        with `citizen:` (CITIZEN_MEMORY) holds something about one citizen (their address, their
        words): the retention purge forgets it `router.retention.days` after it was last written."""
        ...

    async def answered(self, channel: str, keys: Sequence[str], *, route: str = "answer") -> None:
        """The replies with these idempotency keys (from a `Receipt`) reached the citizen in the
        provider's response: they are sent, and the dispatcher does not send them again."""
        ...

    async def lead(self, job: str) -> bool:
        """Whether this instance should run `job` now (a poller): of several instances on one
        database only one does; ask again before each round, the answer can change."""
        ...

    async def staff_action(self, action: StaffAction) -> StaffResult:
        """Carry out a staff member's action from a staff channel (the Slack desk)."""
        ...


ConversationSource = Callable[[str, str], Awaitable[Sequence[ConversationItem]]]


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str | None = None
    # How the provider took it, where a door has several ways that cost or behave differently
    # (Kakao: in the skill's answer, by callback, through the paid Event API, or held for the next
    # answer; WhatsApp: free text or an approved template). Counted per channel in /metrics.
    route: str | None = None


CITIZEN_MEMORY = "citizen:"  # the prefix of a memory about one citizen (ChannelHost.remember)


class SendError(Exception):
    """A send that did not happen."""


class TransientSendError(SendError):
    """Worth another try later (an outage, a 5xx, a 429)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Will never succeed (an opted-out number, a blocked bot): stop retrying."""


@dataclass(frozen=True)
class RateLimit:
    """A channel's declared sending limits; None means unlimited."""

    per_second: float | None = None
    per_recipient_per_second: float | None = None


class BadRequest(ValueError):
    """A webhook body that cannot be understood: answered with 400."""


def as_utc(at: datetime) -> datetime:
    """`at` as an aware UTC time; a naive one (as SQLite gives them back) is taken to be UTC already."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def buttons_as_text(text: str, buttons: Sequence[Button]) -> str:
    """The plain-text fallback for channels without buttons: the options on a line, as replies."""
    if not buttons:
        return text
    options = "  ".join(b.value if b.label == b.value else f"{b.value}: {b.label}" for b in buttons)
    return f"{text}\n{options}"


class Channel(abc.ABC):
    """An adapter. Subclasses declare `name` and implement `send`; push channels add routes."""

    name: ClassVar[str]
    supports_buttons: ClassVar[bool] = False
    fetches_media: ClassVar[bool] = False  # implements `fetch_media`
    can_find_sent: ClassVar[bool] = False  # implements `find_sent`

    def __init__(self, rate_limit: RateLimit | None = None) -> None:
        self._host: ChannelHost | None = None
        self.rate_limit = rate_limit or RateLimit()  # kept by the dispatcher

    @property
    def host(self) -> ChannelHost:
        if self._host is None:
            raise RuntimeError(f"channel {self.name} received a message before it was started")
        return self._host

    @property
    def inbound(self) -> InboundHandler:
        return self.host.intake

    def routes(self) -> list[web.AbstractRouteDef]:
        """HTTP routes this channel serves inside the bot's web server."""
        return []

    async def start(self, host: ChannelHost) -> None:
        """Begin accepting messages (pollers start their loops here)."""
        self._host = host

    async def stop(self) -> None:
        """Stop accepting messages and release connections; may be called more than once."""

    @abc.abstractmethod
    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver one message, or raise a `SendError` saying whether to try again."""

    async def find_sent(self, message: OutboundMessage, *, since: datetime) -> SendResult | None:
        """Whether `message` reached the provider in an attempt begun at `since` whose outcome was never
        recorded (the process died mid-send): its result when the provider has it, None when it does not.
        Raise a `SendError` when the provider cannot be asked now (the dispatcher then retries later)."""
        raise NotImplementedError

    def on_sent(self, message: OutboundMessage) -> None:
        """Called once the message is recorded as sent (after `send` returned and that committed)."""

    def send_cost(self, message: OutboundMessage) -> int:
        """How much of the rate limit one send uses (an SMS: its segments)."""
        return 1

    async def fetch_media(self, attachment: Attachment) -> FetchedMedia:
        """Download an inbound attachment with the channel's credentials; raise a `SendError`
        saying whether to try again (the names are shared with sending: a provider call failed)."""
        raise PermanentSendError(f"channel {self.name} cannot fetch media")


class WebhookChannel(Channel):
    """A channel the provider pushes to: read within the size limit, authenticate, then handle. A
    citizen's channel parses, hands over, then acknowledges (the default `handle_verified`); the
    staff desk handles staff gestures instead."""

    max_body_bytes: ClassVar[int] = 64 * 1024

    @abc.abstractmethod
    def verify(self, request: web.Request, body: bytes) -> bool:
        """Whether the request really comes from the provider (signature, secret token)."""

    def parse(self, request: web.Request, body: bytes) -> list[InboundMessage]:
        """The messages in the request; raise `BadRequest` for a body that makes no sense. Every
        channel that takes citizens' messages has it."""
        raise NotImplementedError(f"{type(self).__name__} takes no citizens' messages")

    def throttle(self, messages: Sequence[InboundMessage]) -> float | None:
        """Seconds the sender should wait before sending again, or None to accept (default)."""
        return None

    async def acknowledge(
        self, messages: Sequence[InboundMessage], receipts: Sequence[Receipt]
    ) -> web.StreamResponse:
        """The answer the provider expects once every message is committed."""
        return web.json_response({"accepted": True, "duplicate": all(r.duplicate for r in receipts)})

    async def read_verified(self, request: web.Request) -> bytes | web.Response:
        """The body of an authentic request within the size limit, or the error to answer (413, 400, 403)."""
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            return _error(413, "request body too large")
        try:
            body = await read_body(request, self.max_body_bytes + 1)
        except (ConnectionError, ValueError):
            return _error(400, "could not read the request body")
        if len(body) > self.max_body_bytes:
            return _error(413, "request body too large")
        if not self.verify(request, body):
            log.warning("%s: refused a request that failed authentication from %s", self.name, request.remote)
            return _error(403, "forbidden")
        return body

    async def handle_webhook(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_verified(request)
        if isinstance(body, web.Response):
            return body
        return await self.handle_verified(request, body)

    async def handle_verified(self, request: web.Request, body: bytes) -> web.StreamResponse:
        """What an authentic request does: its citizens' messages are taken in, then acknowledged."""
        try:
            messages = self.parse(request, body)
        except BadRequest as exc:
            return _error(400, str(exc))
        wait = self.throttle(messages)
        if wait is not None:
            response = _error(429, "too many messages; try again later")
            response.headers["Retry-After"] = str(max(1, round(wait)))
            return response
        try:
            receipts = [await self.inbound(message) for message in messages]
        except Exception:
            # Nothing was acknowledged, so the sender retries and nothing is lost; say "later".
            log.exception("%s: could not store an inbound message; asking the sender to retry", self.name)
            response = _error(503, "temporarily unavailable; please retry")
            response.headers["Retry-After"] = "5"
            return response
        return await self.acknowledge(messages, receipts)


async def read_body(request: web.Request, limit: int) -> bytes:
    """Up to `limit` bytes of the body: one `read(n)` returns only what has arrived so far."""
    body = bytearray()
    while len(body) < limit and (chunk := await request.content.read(limit - len(body))):
        body += chunk
    return bytes(body)


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)
