"""Tickets: references, lookups, and the claims of the lifecycle sweep."""

from __future__ import annotations

import weakref
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import Ticket, TicketStatus

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
