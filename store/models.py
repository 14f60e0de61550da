"""Tables. Times are stored in UTC and always come back timezone-aware."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, LargeBinary, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


# Plain functions, not `list` and `dict`: pydantic inspects a default factory's signature each time a
# row is made, and a builtin's costs about 60 us (its text signature is parsed), a function's 5.
def empty_list() -> list[Any]:
    return []


def empty_dict() -> dict[str, Any]:
    return {}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is stored as UTC and read back aware, on SQLite (which keeps no zone) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class TicketStatus(enum.StrEnum):
    NEW = "new"
    ANSWERED = "answered"
    REVIEW = "review"
    FORWARDED = "forwarded"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CLOSED = "closed"


# A ticket in one of these states is still being handled: a new message from its contact joins it.
OPEN_STATUSES = frozenset(
    {
        TicketStatus.NEW,
        TicketStatus.REVIEW,
        TicketStatus.FORWARDED,
        TicketStatus.IN_PROGRESS,
        TicketStatus.REOPENED,
    }
)


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class MediaStatus(enum.StrEnum):
    PENDING = "pending"  # still at the provider: to be fetched
    STORED = "stored"
    FAILED = "failed"  # could not be fetched for good (the reason is in `error`)
    PURGED = "purged"  # the retention period has passed: the file is gone


class Contact(SQLModel, table=True):
    """A citizen as one channel knows them: (channel, address) is the identity."""

    __table_args__ = (UniqueConstraint("channel", "address", name="uq_contact_channel_address"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    address: str = Field(max_length=255)
    display_name: str | None = Field(default=None, max_length=255)
    language: str | None = Field(default=None, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Set by STOP (and its synonyms), cleared by START: nothing is sent to the contact meanwhile.
    opted_out_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When the retention period took the address and name (the address then reads "purged:<id>").
    purged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Ticket(SQLModel, table=True):
    __table_args__ = (Index("ix_ticket_contact_status", "contact_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=32, unique=True)
    contact_id: int = Field(foreign_key="contact.id")
    channel: str = Field(max_length=32)
    language: str = Field(max_length=16)
    category: str | None = Field(default=None, max_length=64)
    department: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(default=TicketStatus.NEW, max_length=16, index=True)
    priority: int = Field(default=0)
    sensitive: bool = Field(default=False)
    faq_entry: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    first_response_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Lifecycle marks: each is set in the transaction that acted on it, so a restart neither
    # repeats nor loses a reminder, an escalation or a rating request.
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalations: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    assignee: str | None = Field(default=None, max_length=255)  # the staff member who claimed it
    assignee_name: str | None = Field(default=None, max_length=255)
    rating_requested_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    rating: int | None = Field(default=None)
    rated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    rating_comment: str | None = Field(default=None)
    # When the retention period took its messages' texts, photos and addresses (the counts, times,
    # department and rating stay for the statistics).
    purged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TicketCounter(SQLModel, table=True):
    """The last reference number handed out in a year (references read 2026-000123)."""

    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last: int = Field(default=0)


class Message(SQLModel, table=True):
    """Every message in or out. Inbound ones carry the provider's id, unique per channel."""

    __table_args__ = (
        UniqueConstraint("channel", "provider_message_id", name="uq_message_channel_provider_id"),
        Index("ix_message_contact_id", "contact_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    contact_id: int = Field(foreign_key="contact.id")
    direction: str = Field(max_length=8)
    channel: str = Field(max_length=32)
    provider_message_id: str | None = Field(default=None, max_length=255)
    author: str = Field(max_length=255)  # "citizen", "bot" or "staff:<id>"
    author_name: str | None = Field(default=None, max_length=255)
    text: str = Field(default="")
    attachments: list[dict[str, Any]] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False)
    )
    buttons: list[dict[str, Any]] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    location: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    language: str | None = Field(default=None, max_length=16)
    reply_to: str | None = Field(default=None, max_length=255)
    raw: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    purged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # text and payload removed


class TicketEvent(SQLModel, table=True):
    """The append-only audit trail: who did what to a ticket, and when."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=255)  # "citizen", "bot", "system", "staff:<id>"
    actor_name: str | None = Field(default=None, max_length=255)
    kind: str = Field(max_length=32)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str | None = Field(default=None, max_length=16)
    detail: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))


class Outbox(SQLModel, table=True):
    """One outgoing message to deliver, written in the transaction of the change that caused it."""

    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_claimed_by", "status", "claimed_by"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=128, unique=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    channel: str = Field(max_length=32)
    recipient: str = Field(max_length=255)
    payload: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=OutboxStatus.PENDING, max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The current claim: which instance (`server.instance`) and when it began.
    claimed_by: str | None = Field(default=None, max_length=255)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set when a row is claimed again while an earlier attempt's outcome was never recorded (its
    # sender died mid-send): that attempt began then, and may have reached the provider.
    unsure_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None)
    provider_message_id: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # What the provider reported afterwards (a Twilio status callback): delivered, undelivered, ...
    delivery_status: str | None = Field(default=None, max_length=32)
    delivery_error: str | None = Field(default=None)
    delivery_updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Media(SQLModel, table=True):
    """A citizen's photo or file, copied from the provider (whose links expire) into the store."""

    __table_args__ = (Index("ix_media_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    channel: str = Field(max_length=32)
    source_url: str  # the provider's reference, fetched through the channel adapter
    content_type: str | None = Field(default=None, max_length=255)
    status: str = Field(default=MediaStatus.PENDING, max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    size: int | None = Field(default=None)
    data: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    error: str | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    stored_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RoutingSource(enum.StrEnum):
    IMPORT = "import"  # a row of a spreadsheet of historic complaints (`bot.py routing import`)
    TICKET = "ticket"  # a resolved ticket: its first citizen message and its final department


class RoutingExample(SQLModel, table=True):
    """A text and the department that handled it: what the department model learns from. A ticket
    has at most one, rewritten each time it is resolved (after a reassignment: the new department)."""

    __table_args__ = (Index("ix_routingexample_digest", "digest", "department"),)

    id: int | None = Field(default=None, primary_key=True)
    text: str
    department: str = Field(max_length=64, index=True)
    source: str = Field(max_length=16)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", unique=True)
    digest: str = Field(max_length=64)  # of the text: an imported row already there is not added again
    origin: str | None = Field(default=None, max_length=255)  # an import's file and line
    # When the text was written: the ticket's creation, the spreadsheet's date, or the import.
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


CITIZEN_MEMORY = "citizen:"  # a channel memory's name prefix for what it keeps about one citizen


class ChannelCursor(SQLModel, table=True):
    """What a channel remembers (channels.base.ChannelHost): where a poller has read up to (X's
    since_id), so a restart neither misses nor repeats; a door's memory about one citizen (names
    starting `citizen:`, forgotten with the retention purge)."""

    channel: str = Field(primary_key=True, max_length=32)
    name: str = Field(primary_key=True, max_length=255)
    value: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FaqLabel(SQLModel, table=True):
    """A staff decision about a citizen's text, which the FAQ learns from: `positive` (sent with
    `entry_id`'s answer; `variant`: the text is a learned question of that entry), `negative` ("0"
    after `entry_id` answered it automatically) or `out_of_scope` (answered in staff's own words when
    `entry_id` was suggested)."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    entry_id: str = Field(max_length=128, index=True)
    text: str
    language: str = Field(max_length=16)
    variant: bool = Field(default=False)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    actor: str = Field(max_length=64)
    actor_name: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    # An administrator's `faq forget`: no longer a variant nor a label.
    forgotten_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # `faq learn` wrote the variant into the YAML files: the files have it now.
    folded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class FaqFit(SQLModel, table=True):
    """Thresholds (and models) refitted from the labels, as a calibration file's JSON; the newest counts."""

    id: int | None = Field(default=None, primary_key=True)
    fitted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    labels: int
    confidence: str  # knowledge.calibration.Confidence.to_json()
