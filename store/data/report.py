"""What the monthly report reads besides the figures of store/data/figures.py: which FAQ entries
answered, which answers citizens turned down, and the texts the report groups into themes (the
router shows only a group's size and shared terms, never a text). Sensitive reports are never read;
purged tickets have no text left and are left out of the texts."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import ChannelCursor, Direction, Message, Ticket, TicketEvent, TicketStatus


@dataclass(frozen=True)
class Said:
    """One citizen text for grouping: whose (to count distinct people), where it went."""

    ticket_id: int
    contact_id: int
    text: str
    department: str | None
    kind: str  # the first decision ("forwarded", "review") or "comment"
    reason: str | None  # a forward's reason ("triage", "keyword:...", "model", "faq:<id>")
    rating: int | None = None


async def city_was_open(session: AsyncSession, *, before: datetime) -> bool:
    """Whether any ticket was created before `before` (a new install has nothing to report on)."""
    found = await session.exec(select(Ticket.id).where(col(Ticket.created_at) < before).limit(1))
    return found.first() is not None


async def answered_entries(session: AsyncSession, *, start: datetime, end: datetime) -> list[tuple[str, int]]:
    """(FAQ entry, tickets it answered) for tickets created in [start, end), most first. An entry is
    set on a ticket when its answer was sent, automatically or from the review queue."""
    count = func.count()
    query = (
        select(Ticket.faq_entry, count)
        .where(
            col(Ticket.faq_entry).is_not(None),
            col(Ticket.sensitive).is_(False),
            col(Ticket.created_at) >= start,
            col(Ticket.created_at) < end,
        )
        .group_by(col(Ticket.faq_entry))
        .order_by(count.desc(), col(Ticket.faq_entry))
    )
    return [(entry or "", n) for entry, n in (await session.exec(query)).all()]


async def turned_down_entries(
    session: AsyncSession, *, start: datetime, end: datetime
) -> list[tuple[str, int]]:
    """(FAQ entry, times a citizen asked for a person right after its answer) in [start, end)."""
    count = func.count()
    query = (
        select(Ticket.faq_entry, count)
        .select_from(TicketEvent)
        .join(Ticket, col(Ticket.id) == TicketEvent.ticket_id)
        .where(
            TicketEvent.kind == "status",
            TicketEvent.from_status == TicketStatus.ANSWERED,
            TicketEvent.to_status == TicketStatus.FORWARDED,
            TicketEvent.actor == "citizen",
            col(TicketEvent.at) >= start,
            col(TicketEvent.at) < end,
            col(Ticket.faq_entry).is_not(None),
            col(Ticket.sensitive).is_(False),
        )
        .group_by(col(Ticket.faq_entry))
        .order_by(count.desc(), col(Ticket.faq_entry))
    )
    return [(entry or "", n) for entry, n in (await session.exec(query)).all()]


async def first_questions(
    session: AsyncSession, *, start: datetime, end: datetime, statuses: Collection[str]
) -> list[Said]:
    """New tickets that went from "new" to one of `statuses` in [start, end), oldest first, with
    their first citizen message."""
    first = (
        select(Message.ticket_id, func.min(Message.id).label("message_id"))
        .where(Message.direction == Direction.IN, col(Message.ticket_id).is_not(None))
        .group_by(col(Message.ticket_id))
        .subquery()
    )
    query = (
        select(TicketEvent, Ticket.contact_id, Ticket.department, Message.text)
        .join(Ticket, col(Ticket.id) == TicketEvent.ticket_id)
        .join(first, first.c.ticket_id == col(Ticket.id))
        .join(Message, col(Message.id) == first.c.message_id)
        .where(
            TicketEvent.kind == "status",
            TicketEvent.from_status == TicketStatus.NEW,
            col(TicketEvent.to_status).in_(list(statuses)),
            col(TicketEvent.at) >= start,
            col(TicketEvent.at) < end,
            col(Ticket.sensitive).is_(False),
            col(Ticket.purged_at).is_(None),
        )
        .order_by(col(TicketEvent.id))
    )
    return [
        Said(
            ticket_id=event.ticket_id,
            contact_id=contact_id,
            text=text,
            department=event.detail.get("department") or department,
            kind=event.to_status or "",
            reason=event.detail.get("reason"),
        )
        for event, contact_id, department, text in (await session.exec(query)).all()
    ]


async def rating_comments(session: AsyncSession, *, start: datetime, end: datetime) -> list[Said]:
    """The comments given with ratings in [start, end), oldest first."""
    query = (
        select(Ticket)
        .where(
            col(Ticket.rating_comment).is_not(None),
            col(Ticket.rated_at) >= start,
            col(Ticket.rated_at) < end,
            col(Ticket.sensitive).is_(False),
            col(Ticket.purged_at).is_(None),
        )
        .order_by(col(Ticket.rated_at), col(Ticket.id))
    )
    return [
        Said(
            ticket_id=t.id or 0,
            contact_id=t.contact_id,
            text=t.rating_comment or "",
            department=t.department,
            kind="comment",
            reason=None,
            rating=t.rating,
        )
        for t in (await session.exec(query)).all()
    ]


async def claim_once(session: AsyncSession, *, channel: str, name: str, value: str, at: datetime) -> bool:
    """Mark (channel, name) as done in the caller's transaction; False when it already was, by this
    or a concurrent transaction (the row's key decides: the loser of a race gets False, not an error,
    once the winner commits)."""
    if await session.get(ChannelCursor, (channel, name)) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(ChannelCursor(channel=channel, name=name, value=value, updated_at=at))
    except IntegrityError:
        return False
    return True
