"""What the city's figures are computed from (router/figures.py): per ticket only times, channel,
department and rating, never a word, a name or an address. Each function takes any time range, so
the public status page's weeks and a monthly report read the same rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import OPEN_STATUSES, Ticket, TicketEvent, TicketStatus


@dataclass(frozen=True)
class TicketFacts:
    """One ticket as the figures see it."""

    channel: str
    department: str | None
    created_at: datetime
    first_response_at: datetime | None
    due_at: datetime | None
    resolved_at: datetime | None
    forwarded_at: datetime | None  # when it first went to a department (handling time starts)
    escalations: int  # times it was late (each moved its due time)
    rating: int | None
    rated_at: datetime | None


async def ticket_facts(
    session: AsyncSession, *, start: datetime, end: datetime, include_sensitive: bool = False
) -> list[TicketFacts]:
    """Tickets created, resolved or rated in [start, end). Sensitive reports only with
    `include_sensitive` (never on a public page)."""
    forwarded = (
        select(TicketEvent.ticket_id, func.min(TicketEvent.at).label("forwarded_at"))
        .where(TicketEvent.kind == "status", TicketEvent.to_status == TicketStatus.FORWARDED)
        .group_by(col(TicketEvent.ticket_id))
        .subquery()
    )
    in_range = or_(
        _between(col(Ticket.created_at), start, end),
        _between(col(Ticket.resolved_at), start, end),
        _between(col(Ticket.rated_at), start, end),
    )
    # Ten columns: more than sqlmodel's typed select() takes, so a plain SQLAlchemy one.
    query = (
        sa_select(
            col(Ticket.channel),
            col(Ticket.department),
            col(Ticket.created_at),
            col(Ticket.first_response_at),
            col(Ticket.due_at),
            col(Ticket.resolved_at),
            forwarded.c.forwarded_at,
            col(Ticket.escalations),
            col(Ticket.rating),
            col(Ticket.rated_at),
        )
        .outerjoin(forwarded, forwarded.c.ticket_id == col(Ticket.id))
        .where(in_range)
        .order_by(col(Ticket.id))
    )
    if not include_sensitive:
        query = query.where(col(Ticket.sensitive).is_(False))
    connection = await session.connection()
    rows = (await connection.execute(query)).all()
    return [
        TicketFacts(
            channel=channel,
            department=department,
            created_at=created_at,
            first_response_at=first_response_at,
            due_at=due_at,
            resolved_at=resolved_at,
            forwarded_at=_aware(forwarded_at),
            escalations=escalations or 0,
            rating=rating,
            rated_at=rated_at,
        )
        for (
            channel,
            department,
            created_at,
            first_response_at,
            due_at,
            resolved_at,
            forwarded_at,
            escalations,
            rating,
            rated_at,
        ) in rows
    ]


async def open_by_department(
    session: AsyncSession, *, now: datetime, include_sensitive: bool = False
) -> list[tuple[str, int, int]]:
    """(department, open tickets, of which past their due time at `now`) for each department with
    open tickets ("" for tickets without one yet)."""
    overdue = func.sum(case((col(Ticket.due_at) < now, 1), else_=0))
    query = (
        select(Ticket.department, func.count(), overdue)
        .where(col(Ticket.status).in_([s.value for s in OPEN_STATUSES]))
        .group_by(col(Ticket.department))
    )
    if not include_sensitive:
        query = query.where(col(Ticket.sensitive).is_(False))
    return [
        (department or "", count, int(late or 0))
        for department, count, late in (await session.exec(query)).all()
    ]


def _between(column: Any, start: datetime, end: datetime) -> Any:
    return and_(column >= start, column < end)


def _aware(moment: datetime | str | None) -> datetime | None:
    """An aggregate's datetime: SQLite's MIN() over a subquery gives back text, without the column's type."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
