"""Keyword-only data functions. Each takes the caller's session and never commits: the caller's
transaction decides what is one unit of work."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, text, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import (
    ChannelCursor,
    Contact,
    Direction,
    Media,
    MediaStatus,
    Message,
    Outbox,
    OutboxStatus,
    Ticket,
    TicketEvent,
    utcnow,
)

# --- contacts -------------------------------------------------------------------------------


async def get_or_create_contact(
    session: AsyncSession,
    *,
    channel: str,
    address: str,
    display_name: str | None = None,
    language: str | None = None,
) -> Contact:
    contact = (
        await session.exec(select(Contact).where(Contact.channel == channel, Contact.address == address))
    ).first()
    if contact is None:
        # A nested transaction makes a concurrent first message of the same contact harmless:
        # the loser of the race reads the winner's row instead of failing the whole intake.
        from sqlalchemy.exc import IntegrityError

        try:
            async with session.begin_nested():
                contact = Contact(
                    channel=channel, address=address, display_name=display_name, language=language
                )
                session.add(contact)
        except IntegrityError:
            contact = (
                await session.exec(
                    select(Contact).where(Contact.channel == channel, Contact.address == address)
                )
            ).one()
    elif display_name and contact.display_name != display_name:
        contact.display_name = display_name
    return contact


async def get_contact(session: AsyncSession, *, contact_id: int) -> Contact | None:
    return await session.get(Contact, contact_id)


async def find_contact(session: AsyncSession, *, channel: str, address: str) -> Contact | None:
    return (
        await session.exec(select(Contact).where(Contact.channel == channel, Contact.address == address))
    ).first()


# --- tickets --------------------------------------------------------------------------------


async def next_reference(session: AsyncSession, *, year: int) -> str:
    """The next public reference of `year`, e.g. 2026-000123 (one counter row per year)."""
    connection = await session.connection()
    last = (
        await connection.execute(
            text(
                "INSERT INTO ticketcounter (year, last) VALUES (:year, 1) "
                "ON CONFLICT (year) DO UPDATE SET last = ticketcounter.last + 1 RETURNING last"
            ),
            {"year": year},
        )
    ).scalar_one()
    return f"{year}-{last:06d}"


async def add_ticket(session: AsyncSession, *, ticket: Ticket) -> Ticket:
    session.add(ticket)
    await session.flush()
    return ticket


async def get_ticket(session: AsyncSession, *, reference: str) -> Ticket | None:
    return (await session.exec(select(Ticket).where(Ticket.reference == reference))).first()


async def get_ticket_by_id(session: AsyncSession, *, ticket_id: int) -> Ticket | None:
    return await session.get(Ticket, ticket_id)


async def latest_ticket_of(session: AsyncSession, *, contact_id: int) -> Ticket | None:
    """The contact's newest ticket, whatever its status."""
    return (
        await session.exec(
            select(Ticket).where(Ticket.contact_id == contact_id).order_by(col(Ticket.id).desc())
        )
    ).first()


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
    return (
        await session.exec(
            select(Message).where(
                Message.channel == channel, Message.provider_message_id == provider_message_id
            )
        )
    ).first()


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


async def add_message(session: AsyncSession, *, message: Message) -> Message:
    session.add(message)
    await session.flush()
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
    session.add(event)
    await session.flush()
    return event


async def ticket_events(session: AsyncSession, *, ticket_id: int) -> Sequence[TicketEvent]:
    return (
        await session.exec(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(col(TicketEvent.id))
        )
    ).all()


async def conversation(session: AsyncSession, *, contact_id: int, limit: int = 200) -> Sequence[Message]:
    """What the citizen can see: their own messages and ours that were delivered, oldest first."""
    delivered = select(Outbox.message_id).where(
        Outbox.status == OutboxStatus.SENT, col(Outbox.message_id).is_not(None)
    )
    rows = (
        await session.exec(
            select(Message)
            .where(
                Message.contact_id == contact_id,
                or_(col(Message.direction) == Direction.IN, col(Message.id).in_(delivered)),
            )
            .order_by(col(Message.id).desc())
            .limit(limit)
        )
    ).all()
    return list(reversed(rows))


# What a provider says last about a message; an earlier step reported late never replaces it.
FINAL_DELIVERY_STATUSES = frozenset({"delivered", "undelivered", "failed", "read"})


# --- outbox ---------------------------------------------------------------------------------


async def add_outbox(session: AsyncSession, *, row: Outbox) -> Outbox:
    session.add(row)
    await session.flush()
    return row


async def claim_outbox(
    session: AsyncSession,
    *,
    channels: Collection[str],
    now: datetime,
    lease: timedelta,
    limit: int,
) -> list[Outbox]:
    """Claim due rows for these channels: pending ones whose time has come, and ones whose
    sender's lease ran out (it crashed mid-send). Several instances claim disjoint rows."""
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
        .values(status=OutboxStatus.SENDING, claimed_until=now + lease, attempts=Outbox.attempts + 1)
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


async def finish_outbox(session: AsyncSession, *, outbox_id: int, attempt: int, **values: Any) -> bool:
    """Record the outcome of the claim made at `attempt`. False when the claim was lost meanwhile
    (its lease ran out and another sender took the row), so a late outcome cannot overwrite it."""
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
