"""What a ticket's public status page may show besides the ticket's own times: the notes staff
made public. Internal notes and every other event stay out at the query."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import TicketEvent

PUBLIC_NOTE = "public_note"  # the event kind of a note staff made public (router/desk.py)


async def public_notes(session: AsyncSession, *, ticket_id: int) -> list[tuple[datetime, str]]:
    """(when, text) of each public note on the ticket, oldest first."""
    query = (
        select(TicketEvent.at, TicketEvent.detail)
        .where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == PUBLIC_NOTE)
        .order_by(col(TicketEvent.id))
    )
    return [(at, str(detail.get("text", ""))) for at, detail in (await session.exec(query)).all()]


async def public_notes_by_ticket(
    session: AsyncSession, *, ticket_ids: Collection[int]
) -> dict[int, list[str]]:
    """The public notes' texts of each of these tickets, oldest first (Open311's status_notes)."""
    if not ticket_ids:
        return {}
    query = (
        select(TicketEvent.ticket_id, TicketEvent.detail)
        .where(col(TicketEvent.ticket_id).in_(list(ticket_ids)), TicketEvent.kind == PUBLIC_NOTE)
        .order_by(col(TicketEvent.id))
    )
    notes: dict[int, list[str]] = {}
    for ticket_id, detail in (await session.exec(query)).all():
        text = detail.get("text")
        if isinstance(text, str) and text.strip():
            notes.setdefault(ticket_id, []).append(text.strip())
    return notes
