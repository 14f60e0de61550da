"""Messages and ticket events: what was said, and the audit trail of what was done."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.data.common import insert_row
from store.models import Direction, Message, Outbox, OutboxStatus, TicketEvent, utcnow


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
