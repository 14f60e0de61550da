"""What the public Open311 API may read of tickets: status, department and times, with the service
code and place of a report made through Open311, and the staff's public notes. Never a contact,
a citizen's words, a photo, or a sensitive ticket (one reads as a ticket that does not exist)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import Direction, Message, Ticket

OPEN311_CHANNEL = "open311"


@dataclass(frozen=True)
class Open311Request:
    """A ticket as the public may see it. `service_code` and the coordinates only for a report made
    through Open311 (the app gave them for a public report), until the retention period takes them."""

    ticket_id: int
    reference: str
    status: str
    department: str | None
    created_at: datetime
    updated_at: datetime
    due_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    service_code: str | None
    latitude: float | None
    longitude: float | None


async def open311_requests(
    session: AsyncSession,
    *,
    references: Collection[str] | None = None,
    service_codes: Collection[str] | None = None,
    statuses: Collection[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 1000,
) -> list[Open311Request]:
    """With `references`: those tickets, whatever their channel. Otherwise the reports made through
    Open311, created in [start, end], of the services and (ticket) statuses given; newest first."""
    report = and_(
        col(Message.ticket_id) == col(Ticket.id),
        col(Message.direction) == Direction.IN,
        col(Message.channel) == OPEN311_CHANNEL,
    )
    query = (
        select(Ticket, Message.raw, Message.location)
        .outerjoin(Message, report)
        .where(col(Ticket.sensitive).is_(False))
    )
    if references is not None:
        query = query.where(col(Ticket.reference).in_(list(references)))
    else:
        query = query.where(col(Ticket.channel) == OPEN311_CHANNEL)
        if service_codes:
            query = query.where(col(Message.raw)["service_code"].as_string().in_(list(service_codes)))
        if statuses:
            query = query.where(col(Ticket.status).in_(list(statuses)))
        if start is not None:
            query = query.where(col(Ticket.created_at) >= start)
        if end is not None:
            query = query.where(col(Ticket.created_at) <= end)
    query = query.order_by(col(Ticket.created_at).desc(), col(Ticket.id).desc(), col(Message.id))
    found: dict[int, Open311Request] = {}
    for ticket, raw, location in (await session.exec(query.limit(limit * 2))).all():
        ticket_id = ticket.id or 0
        if ticket_id not in found and len(found) < limit:  # its first Open311 message counts
            found[ticket_id] = _public(ticket, raw, location)
    return list(found.values())


def _public(
    ticket: Ticket, raw: Mapping[str, Any] | None, location: Mapping[str, Any] | None
) -> Open311Request:
    code = raw.get("service_code") if raw else None
    latitude = location.get("latitude") if location else None
    longitude = location.get("longitude") if location else None
    return Open311Request(
        ticket_id=ticket.id or 0,
        reference=ticket.reference,
        status=ticket.status,
        department=ticket.department,
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        due_at=ticket.due_at,
        resolved_at=ticket.resolved_at,
        closed_at=ticket.closed_at,
        service_code=code if isinstance(code, str) else None,
        latitude=float(latitude) if isinstance(latitude, int | float) else None,
        longitude=float(longitude) if isinstance(longitude, int | float) else None,
    )
