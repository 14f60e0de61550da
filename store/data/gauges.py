"""The operator's gauges: the outbox and open tickets by department."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import OPEN_STATUSES, Outbox, OutboxStatus, Ticket


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
