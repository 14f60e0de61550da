"""What the FAQ did not answer, for `faq learn` and `faq gaps`."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import Direction, Message, Ticket, TicketEvent

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
