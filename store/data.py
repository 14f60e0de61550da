"""Keyword-only data functions. Each takes the caller's session and never commits: the caller's
transaction decides what is one unit of work."""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, case, delete, func, insert, or_, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import (
    OPEN_STATUSES,
    ChannelCursor,
    Contact,
    Direction,
    FaqFit,
    FaqLabel,
    Media,
    MediaStatus,
    Message,
    Outbox,
    OutboxStatus,
    RoutingExample,
    RoutingSource,
    Ticket,
    TicketEvent,
    TicketStatus,
    utcnow,
)

Row = TypeVar("Row", TicketEvent, Outbox, Message)


def id_of(row: Contact | Ticket | Message) -> int:
    """The id of a row that must be in the database already (flushed or loaded)."""
    if row.id is None:
        raise RuntimeError(f"{type(row).__name__} was not flushed")
    return row.id


async def insert_row(session: AsyncSession, row: Row) -> Row:
    """Insert `row` with one statement and set its id, without adding it to the session: far cheaper
    than a unit-of-work flush on the intake's hot path. For rows that nothing changes later in the
    same transaction (events, outbox rows, outgoing messages); the caller gets them detached."""
    table = type(row).__table__  # type: ignore[attr-defined]
    values = {column.key: getattr(row, column.key) for column in table.columns if column.key != "id"}
    statement = _INSERTS.get(table.name)
    if statement is None:  # one statement per table, built once: its compiled form is cached
        statement = _INSERTS[table.name] = insert(table).returning(table.c.id)
    connection = await session.connection()
    row.id = (await connection.execute(statement, values)).scalar_one()
    return row


_INSERTS: dict[str, Any] = {}


# --- contacts -------------------------------------------------------------------------------


async def get_or_create_contact(
    session: AsyncSession,
    *,
    channel: str,
    address: str,
    display_name: str | None = None,
    language: str | None = None,
) -> Contact:
    # Locked until the intake commits: the retention purge skips a contact that is writing to us,
    # and a contact purged meanwhile no longer matches its address here (a new one is made).
    where = {"channel": channel, "address": address}
    contact = (await session.exec(_CONTACT_FOR_UPDATE, params=where)).first()
    if contact is None:
        # A nested transaction makes a concurrent first message of the same contact harmless:
        # the loser of the race reads the winner's row instead of failing the whole intake.
        try:
            async with session.begin_nested():
                contact = Contact(
                    channel=channel, address=address, display_name=display_name, language=language
                )
                session.add(contact)
        except IntegrityError:
            contact = (await session.exec(_CONTACT, params=where)).one()
    elif display_name and contact.display_name != display_name:
        contact.display_name = display_name
    return contact


# The hot path's queries are built once: building a statement and its cache key costs more than
# running it on SQLite.
_CONTACT = select(Contact).where(
    Contact.channel == bindparam("channel"), Contact.address == bindparam("address")
)
_CONTACT_FOR_UPDATE = _CONTACT.with_for_update()


async def get_contact(session: AsyncSession, *, contact_id: int) -> Contact | None:
    return await session.get(Contact, contact_id)


async def find_contact(session: AsyncSession, *, channel: str, address: str) -> Contact | None:
    return (await session.exec(_CONTACT, params={"channel": channel, "address": address})).first()


# --- tickets --------------------------------------------------------------------------------


_TAKE_NUMBER = text(
    "INSERT INTO ticketcounter (year, last) VALUES (:year, 1) "
    "ON CONFLICT (year) DO UPDATE SET last = ticketcounter.last + 1 RETURNING last"
)
# The years whose sequence this process knows to exist, by engine (each engine is one database, or
# one schema of it).
_SEQUENCES_MADE: weakref.WeakKeyDictionary[Engine, set[int]] = weakref.WeakKeyDictionary()


async def next_reference(session: AsyncSession, *, year: int) -> str:
    """The next public reference of `year`, e.g. 2026-000123.

    SQLite (one writer at a time) counts in one row per year, in the caller's transaction: the
    references have no gaps. On PostgreSQL that row would be held until the caller commits, and
    every intake of every instance would queue behind it; there each year has a sequence instead,
    which holds nothing (made on first use, starting after the year's counter row, so a database
    that counted in the row goes on from there). A number whose ticket is then not stored (its
    intake failed) is skipped."""
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        last = (await connection.execute(_TAKE_NUMBER, {"year": year})).scalar_one()
        return f"{year}-{last:06d}"
    sequence = f"ticketreference_{int(year)}"
    made = _SEQUENCES_MADE.setdefault(connection.engine.sync_engine, set())
    if year not in made:
        await _make_sequence(connection.engine, sequence, year)
        made.add(year)
    last = (await connection.execute(text(f"SELECT nextval('{sequence}')"))).scalar_one()
    return f"{year}-{last:06d}"


async def _make_sequence(engine: AsyncEngine, sequence: str, year: int) -> None:
    """Create `year`'s sequence if it is not there, in a transaction of its own."""
    async with engine.connect() as own:
        own = await own.execution_options(isolation_level="AUTOCOMMIT")
        # A lock per schema and year: two instances starting together create it once.
        await own.execute(text("SELECT pg_advisory_lock(hashtext(current_schema()), :year)"), {"year": year})
        try:
            counted = (
                await own.execute(text("SELECT last FROM ticketcounter WHERE year = :year"), {"year": year})
            ).scalar()
            start = int(counted or 0) + 1
            await own.execute(text(f"CREATE SEQUENCE IF NOT EXISTS {sequence} START WITH {start}"))
        finally:
            await own.execute(
                text("SELECT pg_advisory_unlock(hashtext(current_schema()), :year)"), {"year": year}
            )


async def add_ticket(session: AsyncSession, *, ticket: Ticket) -> Ticket:
    session.add(ticket)
    await session.flush()
    return ticket


async def claim_overdue(
    session: AsyncSession, *, statuses: Collection[str], now: datetime, limit: int
) -> list[Ticket]:
    """Waiting tickets past their due time and not escalated since it was set, locked for this
    transaction (another instance's sweep skips them)."""
    late = (col(Ticket.due_at) < now) & (
        col(Ticket.escalated_at).is_(None) | (col(Ticket.escalated_at) < col(Ticket.due_at))
    )
    return await _claim_tickets(session, limit, col(Ticket.status).in_(list(statuses)), late)


async def claim_due_soon(
    session: AsyncSession, *, statuses: Collection[str], now: datetime, until: datetime, limit: int
) -> list[Ticket]:
    """Waiting tickets due between now and `until` that have had no reminder, locked."""
    soon = (col(Ticket.due_at) >= now) & (col(Ticket.due_at) <= until) & col(Ticket.reminded_at).is_(None)
    return await _claim_tickets(session, limit, col(Ticket.status).in_(list(statuses)), soon)


async def claim_settled(session: AsyncSession, *, before: datetime, limit: int) -> list[Ticket]:
    """Resolved tickets resolved before `before`, and answered ones untouched since, locked: their
    reopen window has passed."""
    resolved = (col(Ticket.status) == TicketStatus.RESOLVED) & (col(Ticket.resolved_at) < before)
    answered = (col(Ticket.status) == TicketStatus.ANSWERED) & (col(Ticket.updated_at) < before)
    return await _claim_tickets(session, limit, resolved | answered)


async def _claim_tickets(session: AsyncSession, limit: int, *conditions: Any) -> list[Ticket]:
    query = (
        select(Ticket)
        .where(*conditions)
        .order_by(col(Ticket.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.exec(query)).all())


async def get_ticket(session: AsyncSession, *, reference: str) -> Ticket | None:
    return (await session.exec(select(Ticket).where(Ticket.reference == reference))).first()


async def get_ticket_by_id(session: AsyncSession, *, ticket_id: int) -> Ticket | None:
    return await session.get(Ticket, ticket_id)


async def latest_ticket_of(session: AsyncSession, *, contact_id: int) -> Ticket | None:
    """The contact's newest ticket, whatever its status."""
    return (await session.exec(_LATEST_TICKET, params={"contact_id": contact_id})).first()


_LATEST_TICKET = (
    select(Ticket)
    .where(Ticket.contact_id == bindparam("contact_id"))
    .order_by(col(Ticket.id).desc())
    .limit(1)
)


async def list_tickets(
    session: AsyncSession,
    *,
    statuses: Collection[str] | None = None,
    department: str | None = None,
    limit: int = 50,
    most_urgent_first: bool = False,
) -> Sequence[Ticket]:
    """The newest tickets, or with `most_urgent_first` the earliest due (then the oldest) first."""
    query = select(Ticket)
    if statuses:
        query = query.where(col(Ticket.status).in_(list(statuses)))
    if department:
        query = query.where(Ticket.department == department)
    if most_urgent_first:
        query = query.order_by(col(Ticket.due_at).asc().nulls_last(), col(Ticket.id))
    else:
        query = query.order_by(col(Ticket.id).desc())
    return (await session.exec(query.limit(limit))).all()


# --- messages and events --------------------------------------------------------------------


async def find_inbound(session: AsyncSession, *, channel: str, provider_message_id: str) -> Message | None:
    where = {"channel": channel, "provider_message_id": provider_message_id}
    return (await session.exec(_INBOUND, params=where)).first()


_INBOUND = select(Message).where(
    Message.channel == bindparam("channel"),
    Message.provider_message_id == bindparam("provider_message_id"),
)


async def first_inbound(session: AsyncSession, *, ticket_id: int) -> Message | None:
    """The citizen's first message of a ticket (what the ticket is about)."""
    return (
        await session.exec(
            select(Message)
            .where(Message.ticket_id == ticket_id, Message.direction == Direction.IN)
            .order_by(col(Message.id))
            .limit(1)
        )
    ).first()


async def get_message(session: AsyncSession, *, message_id: int) -> Message | None:
    return await session.get(Message, message_id)


class AlreadyStored(Exception):
    """A citizen's message with this provider id is stored already: the same delivery arrived twice
    at once and the other one was stored first."""


async def add_message(session: AsyncSession, *, message: Message, tracked: bool = True) -> Message:
    """Store a message. `tracked=False`: inserted at once and not kept in the session, for a message
    nothing changes later in the same transaction (what the city sends). An inbound message whose
    provider id is stored already raises `AlreadyStored`."""
    try:
        if not tracked:
            return await insert_row(session, message)
        session.add(message)
        await session.flush()
    except IntegrityError as exc:
        if message.provider_message_id is None:
            raise
        raise AlreadyStored(f"{message.channel} message {message.provider_message_id}") from exc
    return message


async def ticket_messages(session: AsyncSession, *, ticket_id: int) -> Sequence[Message]:
    return (
        await session.exec(select(Message).where(Message.ticket_id == ticket_id).order_by(col(Message.id)))
    ).all()


async def has_public_reply(session: AsyncSession, *, ticket_id: int) -> bool:
    """Whether the city has answered this ticket in public (a reply to a post) already."""
    found = await session.exec(
        select(Message.id)
        .where(
            Message.ticket_id == ticket_id,
            Message.direction == Direction.OUT,
            col(Message.reply_to).is_not(None),
        )
        .limit(1)
    )
    return found.first() is not None


async def add_event(
    session: AsyncSession,
    *,
    ticket_id: int,
    actor: str,
    kind: str,
    actor_name: str | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> TicketEvent:
    event = TicketEvent(
        ticket_id=ticket_id,
        actor=actor,
        actor_name=actor_name,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        detail=detail or {},
        at=at or utcnow(),
    )
    return await insert_row(session, event)


async def ticket_events(session: AsyncSession, *, ticket_id: int) -> Sequence[TicketEvent]:
    return (
        await session.exec(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(col(TicketEvent.id))
        )
    ).all()


async def conversation(session: AsyncSession, *, contact_id: int, limit: int = 200) -> Sequence[Message]:
    """What the citizen can see: their own messages and ours that were delivered, oldest first."""
    rows = (await session.exec(_CONVERSATION, params={"contact_id": contact_id, "limit": limit})).all()
    return list(reversed(rows))


_DELIVERED = select(Outbox.message_id).where(
    Outbox.status == OutboxStatus.SENT, col(Outbox.message_id).is_not(None)
)
_CONVERSATION = (
    select(Message)
    .where(
        Message.contact_id == bindparam("contact_id"),
        or_(col(Message.direction) == Direction.IN, col(Message.id).in_(_DELIVERED)),
    )
    .order_by(col(Message.id).desc())
    .limit(bindparam("limit"))
)


# What a provider says last about a message; an earlier step reported late never replaces it.
FINAL_DELIVERY_STATUSES = frozenset({"delivered", "undelivered", "failed", "read"})


# --- outbox ---------------------------------------------------------------------------------


async def add_outbox(session: AsyncSession, *, row: Outbox) -> Outbox:
    return await insert_row(session, row)


async def queue_outgoing(
    session: AsyncSession,
    *,
    payload: dict[str, Any],
    ticket_id: int | None,
    now: datetime,
    message_id: int | None = None,
) -> Outbox:
    """Queue an outgoing message (an `OutboundMessage.to_payload()`) to be sent from `now` on."""
    row = Outbox(
        idempotency_key=payload["idempotency_key"],
        ticket_id=ticket_id,
        message_id=message_id,
        channel=payload["channel"],
        recipient=payload["recipient"],
        payload=payload,
        next_attempt_at=now,
        created_at=now,
    )
    return await insert_row(session, row)


async def claim_outbox(
    session: AsyncSession,
    *,
    channels: Collection[str],
    now: datetime,
    lease: timedelta,
    limit: int,
    claimed_by: str = "",
) -> list[Outbox]:
    """Claim due rows for these channels: pending ones whose time has come, and ones whose
    sender's lease ran out (it crashed mid-send). Several instances claim disjoint rows. A row taken
    from a sender that died keeps, in `unsure_since`, when that sender's attempt began: it may have
    reached the provider."""
    due = or_(
        and_(col(Outbox.status) == OutboxStatus.PENDING, col(Outbox.next_attempt_at) <= now),
        and_(col(Outbox.status) == OutboxStatus.SENDING, col(Outbox.claimed_until) < now),
    )
    ids = (
        select(Outbox.id)
        .where(col(Outbox.channel).in_(list(channels)), due)
        .order_by(col(Outbox.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = await session.exec(
        update(Outbox)
        .where(col(Outbox.id).in_(ids.scalar_subquery()))
        .values(
            status=OutboxStatus.SENDING,
            claimed_until=now + lease,
            attempts=Outbox.attempts + 1,
            claimed_by=claimed_by,
            claimed_at=now,
            unsure_since=case(
                (
                    col(Outbox.status) == OutboxStatus.SENDING,
                    func.coalesce(Outbox.unsure_since, Outbox.claimed_at, Outbox.created_at),
                ),
                else_=Outbox.unsure_since,
            ),
        )
        .returning(Outbox)
        .execution_options(synchronize_session=False)
    )
    return sorted(claimed.scalars().all(), key=lambda row: row.id or 0)


async def waiting_outbox(
    session: AsyncSession, *, channel: str, recipients: Collection[str]
) -> dict[str, tuple[int, datetime]]:
    """For each recipient, its oldest row that waits for a retry (pending): (id, when it is due).
    A later message to the same citizen must not overtake it."""
    if not recipients:
        return {}
    rows = await session.exec(
        select(Outbox.recipient, func.min(Outbox.id))
        .where(
            Outbox.channel == channel,
            col(Outbox.recipient).in_(list(recipients)),
            Outbox.status == OutboxStatus.PENDING,
        )
        .group_by(col(Outbox.recipient))
    )
    oldest = {recipient: row_id for recipient, row_id in rows.all() if row_id is not None}
    if not oldest:
        return {}
    due = await session.exec(
        select(Outbox.id, Outbox.next_attempt_at).where(col(Outbox.id).in_(list(oldest.values())))
    )
    when = dict(due.all())
    return {recipient: (row_id, when[row_id]) for recipient, row_id in oldest.items()}


async def opted_out(session: AsyncSession, *, channel: str, addresses: Collection[str]) -> set[str]:
    """Which of these addresses on the channel said STOP (and not START since)."""
    if not addresses:
        return set()
    rows = await session.exec(
        select(Contact.address).where(
            Contact.channel == channel,
            col(Contact.address).in_(list(addresses)),
            col(Contact.opted_out_at).is_not(None),
        )
    )
    return set(rows.all())


async def record_delivery(
    session: AsyncSession,
    *,
    channel: str,
    status: str,
    at: datetime,
    idempotency_key: str | None = None,
    provider_message_id: str | None = None,
    error: str | None = None,
) -> tuple[Outbox | None, bool]:
    """Note a provider's delivery status on the outgoing row it names (by our key, else its id);
    returns the row and whether its status changed. Reports can arrive out of order or twice: an
    older one never overwrites a newer one."""
    if idempotency_key:
        query = select(Outbox).where(Outbox.idempotency_key == idempotency_key, Outbox.channel == channel)
    elif provider_message_id:
        query = select(Outbox).where(
            Outbox.provider_message_id == provider_message_id, Outbox.channel == channel
        )
    else:
        return None, False
    row = (await session.exec(query.with_for_update())).first()
    if row is None:
        return None, False
    if row.delivery_updated_at is not None and row.delivery_updated_at > at:
        return row, False
    if row.delivery_status in FINAL_DELIVERY_STATUSES and status not in FINAL_DELIVERY_STATUSES:
        return row, False  # a late "sent" after "delivered" (callbacks carry no time of their own)
    changed = row.delivery_status != status
    row.delivery_status, row.delivery_error, row.delivery_updated_at = status, error, at
    if provider_message_id and not row.provider_message_id:
        row.provider_message_id = provider_message_id
    session.add(row)
    return row, changed


# --- media --------------------------------------------------------------------------------------


async def add_media(session: AsyncSession, *, media: Media) -> Media:
    session.add(media)
    await session.flush()
    return media


async def claim_media(
    session: AsyncSession, *, channels: Collection[str], now: datetime, lease: timedelta, limit: int
) -> list[Media]:
    """Claim media due for fetching (pending, or claimed by a fetcher whose lease ran out)."""
    ids = (
        select(Media.id)
        .where(
            col(Media.channel).in_(list(channels)),
            col(Media.status) == MediaStatus.PENDING,
            col(Media.next_attempt_at) <= now,
            or_(col(Media.claimed_until).is_(None), col(Media.claimed_until) < now),
        )
        .order_by(col(Media.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = await session.exec(
        update(Media)
        .where(col(Media.id).in_(ids.scalar_subquery()))
        .values(claimed_until=now + lease, attempts=Media.attempts + 1)
        .returning(Media)
        .execution_options(synchronize_session=False)
    )
    return sorted(claimed.scalars().all(), key=lambda m: m.id or 0)


async def finish_media(session: AsyncSession, *, media_id: int, attempt: int, **values: Any) -> bool:
    """Record a fetch's outcome, unless its claim was lost meanwhile (see `finish_outbox`)."""
    result = await session.exec(
        update(Media)
        .where(col(Media.id) == media_id, col(Media.attempts) == attempt)
        .values(claimed_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


async def get_media(session: AsyncSession, *, media_id: int) -> Media | None:
    return await session.get(Media, media_id)


async def message_media(session: AsyncSession, *, message_id: int) -> Sequence[Media]:
    return (
        await session.exec(select(Media).where(Media.message_id == message_id).order_by(col(Media.id)))
    ).all()


async def next_media_time(session: AsyncSession, *, channels: Collection[str]) -> datetime | None:
    return (
        await session.exec(
            select(func.min(Media.next_attempt_at)).where(
                col(Media.channel).in_(list(channels)), Media.status == MediaStatus.PENDING
            )
        )
    ).first()


# --- cursors of polling channels --------------------------------------------------------------


async def get_cursor(session: AsyncSession, *, channel: str, name: str) -> str | None:
    row = await session.get(ChannelCursor, (channel, name))
    return row.value if row else None


async def set_cursor(session: AsyncSession, *, channel: str, name: str, value: str, at: datetime) -> None:
    row = await session.get(ChannelCursor, (channel, name))
    if row is None:
        session.add(ChannelCursor(channel=channel, name=name, value=value, updated_at=at))
    else:
        row.value, row.updated_at = value, at
        session.add(row)
    await session.flush()


async def get_outbox(session: AsyncSession, *, outbox_id: int) -> Outbox | None:
    return await session.get(Outbox, outbox_id)


async def next_outbox_time(session: AsyncSession, *, channels: Collection[str]) -> datetime | None:
    """When the earliest pending row of these channels falls due (None when there is none)."""
    return (
        await session.exec(
            select(func.min(Outbox.next_attempt_at)).where(
                col(Outbox.channel).in_(list(channels)), Outbox.status == OutboxStatus.PENDING
            )
        )
    ).first()


async def ping(session: AsyncSession) -> None:
    """One round trip to the database (the health check)."""
    await session.exec(text("SELECT 1"))  # type: ignore[call-overload]


async def count_outbox(
    session: AsyncSession, *, status: str, channel: str | None = None, recipient: str | None = None
) -> int:
    query = select(func.count()).select_from(Outbox).where(Outbox.status == status)
    if channel is not None:
        query = query.where(Outbox.channel == channel)
    if recipient is not None:
        query = query.where(Outbox.recipient == recipient)
    return (await session.exec(query)).one()


async def renew_outbox(session: AsyncSession, *, outbox_id: int, attempt: int, until: datetime) -> bool:
    """Extend the lease of the claim made at `attempt`; False when the claim was lost meanwhile."""
    result = await session.exec(
        update(Outbox)
        .where(
            col(Outbox.id) == outbox_id,
            col(Outbox.status) == OutboxStatus.SENDING,
            col(Outbox.attempts) == attempt,
        )
        .values(claimed_until=until)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


async def release_claims(session: AsyncSession, *, claimed_by: str, now: datetime) -> int:
    """Make the rows this instance was sending when it stopped (it was killed) due at once, instead
    of when their lease runs out; whoever claims them next knows they may have been sent."""
    result = await session.exec(
        update(Outbox)
        .where(col(Outbox.status) == OutboxStatus.SENDING, col(Outbox.claimed_by) == claimed_by)
        .values(claimed_until=now - timedelta(seconds=1))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


async def finish_outbox(session: AsyncSession, *, outbox_id: int, attempt: int, **values: Any) -> bool:
    """Record the outcome of the claim made at `attempt`. False when the claim was lost meanwhile
    (its lease ran out and another sender took the row), so a late outcome cannot overwrite it. A
    final outcome (sent, failed) settles whether an earlier attempt was sent."""
    if values.get("status") in (OutboxStatus.SENT, OutboxStatus.FAILED):
        values.setdefault("unsure_since", None)
    result = await session.exec(
        update(Outbox)
        .where(
            col(Outbox.id) == outbox_id,
            col(Outbox.status) == OutboxStatus.SENDING,
            col(Outbox.attempts) == attempt,
        )
        .values(claimed_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


# --- what the FAQ did not answer (`faq learn`, `faq gaps`) ----------------------------------

_CHUNK = 500  # ids per IN (...) list


@dataclass(frozen=True)
class ReviewAnswer:
    """A ticket answered from the review queue: the citizen's question and what staff sent."""

    ticket_id: int
    reference: str
    language: str
    question: str  # the citizen's first message
    entry: str | None  # the FAQ entry whose answer was sent; None for staff's own words
    edited: bool  # staff changed the text before sending it
    answered_at: datetime
    learned: bool  # the ticket has an event of `learned_kind` already


async def review_answers(
    session: AsyncSession, *, since: datetime | None = None, learned_kind: str = "faq_learned"
) -> list[ReviewAnswer]:
    """Tickets answered from the review queue (their "review_sent" event at or after `since`), oldest
    first. Sensitive and purged tickets are left out."""
    query = (
        select(TicketEvent, Ticket)
        .join(Ticket, col(Ticket.id) == TicketEvent.ticket_id)
        .where(
            TicketEvent.kind == "review_sent",
            col(Ticket.sensitive).is_(False),
            col(Ticket.purged_at).is_(None),  # its question is gone
        )
        .order_by(col(TicketEvent.id))
    )
    if since is not None:
        query = query.where(col(TicketEvent.at) >= since)
    sent: dict[int, tuple[TicketEvent, Ticket]] = {}
    for event, ticket in (await session.exec(query)).all():
        sent[event.ticket_id] = (event, ticket)  # the last one, should a ticket have two
    ids = list(sent)
    edited: dict[int, bool] = {}
    learned: set[int] = set()
    questions: dict[int, str] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        changes = await session.exec(
            select(TicketEvent)
            .where(
                col(TicketEvent.ticket_id).in_(chunk),
                TicketEvent.kind == "status",
                TicketEvent.from_status == "review",
                TicketEvent.to_status == "answered",
            )
            .order_by(col(TicketEvent.id))
        )
        for change in changes.all():
            edited[change.ticket_id] = bool(change.detail.get("edited"))
        marks = await session.exec(
            select(TicketEvent.ticket_id).where(
                col(TicketEvent.ticket_id).in_(chunk), TicketEvent.kind == learned_kind
            )
        )
        learned.update(marks.all())
        questions.update(await _first_texts(session, chunk))
    return [
        ReviewAnswer(
            ticket_id=ticket_id,
            reference=ticket.reference,
            language=ticket.language,
            question=questions.get(ticket_id, ""),
            entry=event.detail.get("entry") or None,
            edited=edited.get(ticket_id, False),
            answered_at=event.at,
            learned=ticket_id in learned,
        )
        for ticket_id, (event, ticket) in sent.items()
    ]


@dataclass(frozen=True)
class FirstDecision:
    """What the bot did with a new ticket, with the citizen's question."""

    ticket_id: int
    reference: str
    language: str
    status: str  # the status the ticket went to from "new"
    reason: str | None  # a forward's reason ("triage", "keyword:...")
    department: str | None
    entry: str | None  # the entry suggested for review
    question: str
    at: datetime


async def first_decisions(
    session: AsyncSession,
    *,
    statuses: Collection[str],
    since: datetime | None = None,
) -> list[FirstDecision]:
    """New tickets that went from "new" to one of `statuses` (at or after `since`), oldest first, with
    their first citizen message. Sensitive and purged tickets are never listed."""
    first = (
        select(Message.ticket_id, func.min(Message.id).label("message_id"))
        .where(Message.direction == Direction.IN, col(Message.ticket_id).is_not(None))
        .group_by(col(Message.ticket_id))
        .subquery()
    )
    query = (
        select(TicketEvent, Ticket, Message.text)
        .join(Ticket, col(Ticket.id) == TicketEvent.ticket_id)
        .join(first, first.c.ticket_id == col(Ticket.id))
        .join(Message, col(Message.id) == first.c.message_id)
        .where(
            TicketEvent.kind == "status",
            TicketEvent.from_status == "new",
            col(TicketEvent.to_status).in_(list(statuses)),
            col(Ticket.sensitive).is_(False),
            col(Ticket.purged_at).is_(None),
        )
        .order_by(col(TicketEvent.id))
    )
    if since is not None:
        query = query.where(col(TicketEvent.at) >= since)
    decisions = []
    for event, ticket, question in (await session.exec(query)).all():
        detail = event.detail
        decisions.append(
            FirstDecision(
                ticket_id=event.ticket_id,
                reference=ticket.reference,
                language=ticket.language,
                status=event.to_status or "",
                reason=detail.get("reason"),
                department=detail.get("department") or ticket.department,
                entry=detail.get("entry"),
                question=question,
                at=event.at,
            )
        )
    return decisions


async def _first_texts(session: AsyncSession, ticket_ids: Collection[int]) -> dict[int, str]:
    """The text of each ticket's first citizen message."""
    first = (
        select(func.min(Message.id))
        .where(col(Message.ticket_id).in_(list(ticket_ids)), Message.direction == Direction.IN)
        .group_by(col(Message.ticket_id))
    )
    rows = await session.exec(select(Message.ticket_id, Message.text).where(col(Message.id).in_(first)))
    return {ticket_id: text for ticket_id, text in rows.all() if ticket_id is not None}


# --- routing examples (what the department model learns from) -----------------------------------


def text_digest(text: str) -> str:
    """What identifies an example's text: the same words, whatever the spacing and case."""
    return hashlib.sha256(" ".join(text.casefold().split()).encode("utf-8")).hexdigest()


async def add_routing_examples(
    session: AsyncSession,
    *,
    examples: Sequence[RoutingExample],
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Add imported examples, except those whose text and department are there already (an import
    run twice adds nothing the second time); returns how many were added."""
    added = 0
    seen: set[tuple[str, str]] = set()
    for done, example in enumerate(examples, start=1):
        if progress is not None and (done % 100 == 0 or done == len(examples)):
            progress(done, len(examples))
        example.digest = example.digest or text_digest(example.text)
        key = (example.digest, example.department)
        if key in seen:
            continue
        seen.add(key)
        found = await session.exec(
            select(RoutingExample.id)
            .where(RoutingExample.digest == example.digest, RoutingExample.department == example.department)
            .limit(1)
        )
        if found.first() is not None:
            continue
        session.add(example)
        added += 1
    await session.flush()
    return added


async def set_ticket_example(
    session: AsyncSession, *, ticket_id: int, text: str, department: str, at: datetime
) -> RoutingExample:
    """The ticket's example: its text and the department that resolved it (replacing an earlier one,
    so the example is new and a retraining notices it)."""
    await remove_ticket_example(session, ticket_id=ticket_id)
    example = RoutingExample(
        text=text,
        department=department,
        source=RoutingSource.TICKET,
        ticket_id=ticket_id,
        digest=text_digest(text),
        created_at=at,
    )
    session.add(example)
    await session.flush()
    return example


async def remove_ticket_example(session: AsyncSession, *, ticket_id: int) -> None:
    await session.exec(delete(RoutingExample).where(col(RoutingExample.ticket_id) == ticket_id))


async def routing_examples(
    session: AsyncSession, *, departments: Collection[str] | None = None
) -> Sequence[RoutingExample]:
    """Every example (of these departments), oldest first."""
    query = select(RoutingExample)
    if departments is not None:
        query = query.where(col(RoutingExample.department).in_(list(departments)))
    return (await session.exec(query.order_by(col(RoutingExample.id)))).all()


async def routing_examples_version(session: AsyncSession) -> tuple[int, int]:
    """(how many examples, the newest id): changes whenever an example is added, replaced or removed."""
    count, newest = (
        await session.exec(select(func.count(col(RoutingExample.id)), func.max(RoutingExample.id)))
    ).one()
    return int(count or 0), int(newest or 0)


async def count_routing_examples(session: AsyncSession) -> dict[tuple[str, str], int]:
    """How many examples each (department, source) has."""
    rows = await session.exec(
        select(RoutingExample.department, RoutingExample.source, func.count()).group_by(
            col(RoutingExample.department), col(RoutingExample.source)
        )
    )
    return {(department, source): int(n) for department, source, n in rows.all()}


# --- FAQ learning ---------------------------------------------------------------------------


async def add_faq_label(session: AsyncSession, *, label: FaqLabel) -> FaqLabel:
    session.add(label)
    await session.flush()
    return label


async def faq_labels(
    session: AsyncSession, *, since: datetime | None = None, variants_only: bool = False
) -> Sequence[FaqLabel]:
    """The labels not forgotten, oldest first (only the learned variants not yet in the YAML files)."""
    query = select(FaqLabel).where(col(FaqLabel.forgotten_at).is_(None))
    if variants_only:
        query = query.where(col(FaqLabel.variant).is_(True), col(FaqLabel.folded_at).is_(None))
    if since is not None:
        query = query.where(col(FaqLabel.created_at) >= since)
    return (await session.exec(query.order_by(col(FaqLabel.id)))).all()


async def get_faq_label(session: AsyncSession, *, label_id: int) -> FaqLabel | None:
    return await session.get(FaqLabel, label_id)


async def faq_labels_of_ticket(session: AsyncSession, *, ticket_id: int) -> Sequence[FaqLabel]:
    query = select(FaqLabel).where(FaqLabel.ticket_id == ticket_id, col(FaqLabel.forgotten_at).is_(None))
    return (await session.exec(query)).all()


async def faq_labels_version(session: AsyncSession) -> tuple[int, int, int, int]:
    """Changes whenever a label is added, forgotten or folded, or a fit is stored (cheap to poll)."""
    newest, forgotten, folded = (
        await session.exec(
            select(
                func.max(FaqLabel.id),
                func.count(col(FaqLabel.forgotten_at)),
                func.count(col(FaqLabel.folded_at)),
            )
        )
    ).one()
    fit = (await session.exec(select(func.max(FaqFit.id)))).one()
    return newest or 0, forgotten, folded, fit or 0


async def add_faq_fit(session: AsyncSession, *, fit: FaqFit) -> FaqFit:
    session.add(fit)
    await session.flush()
    return fit


async def latest_faq_fit(session: AsyncSession) -> FaqFit | None:
    return (await session.exec(select(FaqFit).order_by(col(FaqFit.id).desc()).limit(1))).first()


async def answered_automatically(session: AsyncSession, *, ticket_id: int) -> bool:
    """True when the ticket's latest answer came from the bot (an FAQ answer), not from staff."""
    query = (
        select(TicketEvent.actor)
        .where(TicketEvent.ticket_id == ticket_id, TicketEvent.to_status == "answered")
        .order_by(col(TicketEvent.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first() == "bot"


async def mark_faq_labels(
    session: AsyncSession,
    *,
    label_ids: Collection[int],
    forgotten_at: datetime | None = None,
    folded_at: datetime | None = None,
) -> int:
    """Set when labels were forgotten or folded into the YAML files; how many there were."""
    values = {k: v for k, v in (("forgotten_at", forgotten_at), ("folded_at", folded_at)) if v is not None}
    if not label_ids or not values:
        return 0
    result = await session.exec(
        update(FaqLabel).where(col(FaqLabel.id).in_(list(label_ids))).values(**values)
    )
    return int(result.rowcount or 0)


async def count_faq_labels(session: AsyncSession) -> dict[str, int]:
    """Labels in use, by kind."""
    query = (
        select(FaqLabel.kind, func.count())
        .where(col(FaqLabel.forgotten_at).is_(None))
        .group_by(col(FaqLabel.kind))
    )
    return {kind: count for kind, count in (await session.exec(query)).all()}


# --- the operator's gauges ------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxGauge:
    channel: str
    status: str
    rows: int
    oldest: datetime | None  # the oldest row's creation (for pending rows: how long they wait)


async def outbox_gauges(session: AsyncSession) -> list[OutboxGauge]:
    """Outbox rows still waiting (pending, sending) or failed for good, by channel and status, with
    the oldest one's creation time. Sent rows are not counted: they only grow (the sends counter
    says how many went out), and counting them would read every row ever sent at each scrape."""
    live = (OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.FAILED)
    query = (
        select(Outbox.channel, Outbox.status, func.count(), func.min(Outbox.created_at))
        .where(col(Outbox.status).in_([s.value for s in live]))
        .group_by(col(Outbox.channel), col(Outbox.status))
    )
    return [
        OutboxGauge(channel, status, rows, _aware(oldest))
        for channel, status, rows, oldest in (await session.exec(query)).all()
    ]


async def open_ticket_gauges(session: AsyncSession, *, now: datetime) -> list[tuple[str, int, int]]:
    """(department, open tickets, of which past their due time) for every department with open ones."""
    overdue = func.sum(case((col(Ticket.due_at) < now, 1), else_=0))
    query = (
        select(Ticket.department, func.count(), overdue)
        .where(col(Ticket.status).in_([s.value for s in OPEN_STATUSES]))
        .group_by(col(Ticket.department))
    )
    return [
        (department or "", count, int(late or 0))
        for department, count, late in (await session.exec(query)).all()
    ]


def _aware(moment: datetime | str | None) -> datetime | None:
    """An aggregate's datetime: SQLite's MIN() gives back text, without the column's type."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
