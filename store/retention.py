"""The retention purge: what citizens wrote, their photos and their addresses go a set time after a
ticket closes; what the statistics need stays (README, "Retention").

`purge_expired` is the whole pass, a batch per transaction; the functions it runs take the caller's
session like those of store/data/. Rows are changed with plain UPDATEs (no ORM objects), each row
once (a ticket's outbox rows by ticket, those of a message without a ticket by message): a batch
of 200 tickets holds SQLite's one writer for a fraction of a second, and on PostgreSQL a second
UPDATE of a row would check its contact key again and wait for an intake holding that contact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, case, cast, delete, literal, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.db import Database
from store.models import (
    CITIZEN_MEMORY,
    ChannelCursor,
    Contact,
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
)

_CHUNK = 500  # ids per IN (...) list

# Keys of an event's detail that may carry what a person wrote (a staff reply, a provider's error
# quoting a number); the rest (statuses, departments, due times, entry ids) is kept.
_PERSONAL_DETAIL = ("text", "error")

# What a delivered outbox row keeps: its status, times and attempts.
_PURGED_OUTBOX: dict[str, Any] = {
    "payload": {},
    "recipient": "",
    "last_error": None,
    "delivery_error": None,
    "provider_message_id": None,
}


@dataclass(frozen=True)
class Purged:
    """What a purge emptied."""

    tickets: int = 0
    messages: int = 0
    contacts: int = 0
    memories: int = 0  # a door's memories about one citizen (channel memory named `citizen:...`)

    def __add__(self, other: Purged) -> Purged:
        return Purged(
            self.tickets + other.tickets,
            self.messages + other.messages,
            self.contacts + other.contacts,
            self.memories + other.memories,
        )


async def purge_expired(
    db: Database,
    *,
    before: datetime,
    now: datetime,
    batch: int,
    going_on: Callable[[], bool] = lambda: True,
    progress: Callable[[int, int], None] | None = None,
) -> Purged:
    """Purge everything that expired before `before`: tickets and messages a batch per transaction,
    then the contacts left with nothing (found by reading, so SQLite's writer is held only for
    the purging itself). Stops between batches once `going_on()` is false (the bot is stopping)."""
    total = Purged()
    while going_on():
        async with db.transaction() as session:
            purged = await purge_tickets_and_messages(session, before=before, now=now, limit=batch)
        total += purged
        if progress is not None:
            progress(total.tickets, 0)  # how many there are is not counted beforehand
        if not (purged.tickets or purged.messages):
            break
    if going_on():
        async with db.transaction() as session:
            total += Purged(memories=await purge_citizen_memories(session, before=before))
    after = 0
    while going_on():
        async with db.session() as session:
            candidates = await contacts_left_with_nothing(session, after_id=after, limit=batch)
        if not candidates:
            return total
        async with db.transaction() as session:
            total += Purged(contacts=await purge_contacts(session, contact_ids=candidates, now=now))
        after = candidates[-1]
    return total


async def purge_tickets_and_messages(
    session: AsyncSession, *, before: datetime, now: datetime, limit: int
) -> Purged:
    """One batch: up to `limit` tickets closed before `before`, and up to `limit` messages without a
    ticket (a STOP, a help request) that arrived before it.

    A ticket loses its messages' texts, attachments, locations, raw payloads and provider ids (a
    tweet's id finds its author), its photos, its outbox payloads and recipients, the rating comment,
    the words in its events and its routing example. The ticket row (times, channel, language,
    department, status, rating) and its events stay. Open tickets are never touched, however old."""
    ticket_ids = list(
        (
            await session.exec(
                select(Ticket.id)
                .where(
                    Ticket.status == TicketStatus.CLOSED,
                    col(Ticket.closed_at) < before,
                    col(Ticket.purged_at).is_(None),
                )
                .order_by(col(Ticket.id))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )
    loose = list(
        (
            await session.exec(
                select(Message.id)
                .where(
                    col(Message.ticket_id).is_(None),
                    col(Message.created_at) < before,
                    col(Message.purged_at).is_(None),
                )
                .order_by(col(Message.id))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )
    message_ids = list(loose)
    for chunk in _chunks(ticket_ids):
        message_ids += (await session.exec(select(Message.id).where(col(Message.ticket_id).in_(chunk)))).all()
    for chunk in _chunks(message_ids):
        await _purge_messages(session, chunk, now=now)
    for chunk in _chunks(loose):  # a ticket's outbox rows go with the ticket
        await _purge_outbox(session, col(Outbox.message_id).in_(chunk))
    for chunk in _chunks(ticket_ids):
        await _purge_tickets(session, chunk, now=now)
    return Purged(tickets=len(ticket_ids), messages=len(message_ids))


def _left_with_nothing() -> list[ColumnElement[bool]]:
    """A contact has nothing left: every ticket and message of it is purged (none is recent or open)."""
    ticket = select(Ticket.id).where(Ticket.contact_id == Contact.id, col(Ticket.purged_at).is_(None))
    message = select(Message.id).where(Message.contact_id == Contact.id, col(Message.purged_at).is_(None))
    return [col(Contact.purged_at).is_(None), ~ticket.exists(), ~message.exists()]


async def contacts_left_with_nothing(session: AsyncSession, *, after_id: int, limit: int) -> list[int]:
    """Contacts (ids above `after_id`, in order) that still have an address and nothing else."""
    found = await session.exec(
        select(Contact.id)
        .where(col(Contact.id) > after_id, *_left_with_nothing())
        .order_by(col(Contact.id))
        .limit(limit)
    )
    return [contact_id for contact_id in found.all() if contact_id is not None]


async def purge_contacts(session: AsyncSession, *, contact_ids: list[int], now: datetime) -> int:
    """The address and name of those of `contact_ids` that still have nothing else. One that is
    writing to us now (an intake holds it) is skipped, and has a new message afterwards."""
    chosen = (
        await session.exec(
            select(Contact.id)
            .where(col(Contact.id).in_(contact_ids), *_left_with_nothing())
            .with_for_update(skip_locked=True)
        )
    ).all()
    for chunk in _chunks(list(chosen)):
        await session.exec(
            update(Contact)
            .where(col(Contact.id).in_(chunk))
            # "purged:<id>": unique, and never a real address on any channel.
            .values(address=literal("purged:") + cast(Contact.id, String), display_name=None, purged_at=now)
        )
    return len(chosen)


async def purge_citizen_memories(session: AsyncSession, *, before: datetime) -> int:
    """Forget what doors remember about one citizen (an e-mail thread's subject, when they last
    wrote on WhatsApp, notices held for Kakao) when it was last written before `before`."""
    result = await session.exec(
        delete(ChannelCursor).where(
            col(ChannelCursor.name).startswith(CITIZEN_MEMORY), col(ChannelCursor.updated_at) < before
        )
    )
    return int(result.rowcount or 0)


def _chunks(ids: list[int | None]) -> list[list[int]]:
    known = [i for i in ids if i is not None]
    return [known[start : start + _CHUNK] for start in range(0, len(known), _CHUNK)]


async def _purge_messages(session: AsyncSession, message_ids: list[int], *, now: datetime) -> None:
    await session.exec(
        update(Message)
        .where(col(Message.id).in_(message_ids))
        .values(
            text="",
            attachments=[],
            location=None,
            raw=None,
            provider_message_id=None,
            reply_to=None,
            # A citizen's name goes; a staff member's stays (the audit trail says who answered).
            author_name=case((col(Message.author) == "citizen", None), else_=col(Message.author_name)),
            purged_at=now,
        )
    )
    await session.exec(
        update(Media)
        .where(col(Media.message_id).in_(message_ids))
        .values(data=None, source_url="", status=MediaStatus.PURGED, error="the retention period has passed")
    )


async def _purge_tickets(session: AsyncSession, ticket_ids: list[int], *, now: datetime) -> None:
    """The tickets' own traces beyond their messages: desk rows, event words, routing examples."""
    await session.exec(
        update(Ticket).where(col(Ticket.id).in_(ticket_ids)).values(rating_comment=None, purged_at=now)
    )
    await _purge_outbox(session, col(Outbox.ticket_id).in_(ticket_ids))  # messages' and desk rows
    events = await session.exec(
        select(TicketEvent.id, TicketEvent.actor, TicketEvent.actor_name, TicketEvent.detail).where(
            col(TicketEvent.ticket_id).in_(ticket_ids)
        )
    )
    changed = [
        {
            "id": event_id,
            "detail": {k: v for k, v in detail.items() if k not in _PERSONAL_DETAIL},
            "actor_name": None if actor == "citizen" else actor_name,
        }
        for event_id, actor, actor_name, detail in events.all()
        if any(key in detail for key in _PERSONAL_DETAIL) or (actor == "citizen" and actor_name)
    ]
    if changed:  # an UPDATE by primary key per row, sent as one executemany
        await session.exec(update(TicketEvent), params=changed)
    await session.exec(
        delete(RoutingExample).where(
            col(RoutingExample.ticket_id).in_(ticket_ids),
            col(RoutingExample.source) == RoutingSource.TICKET,
        )
    )
    # A label's text is the citizen's: it goes. A learned question stays, detached from the ticket:
    # it was checked for personal data before it became one, and it is part of the FAQ now.
    labels = col(FaqLabel.ticket_id).in_(ticket_ids)
    await session.exec(delete(FaqLabel).where(labels, col(FaqLabel.variant).is_(False)))
    await session.exec(update(FaqLabel).where(labels).values(ticket_id=None))


async def _purge_outbox(session: AsyncSession, chosen: ColumnElement[bool]) -> None:
    # A row still to be sent keeps what it needs (an old closed ticket has none in practice). Said
    # as NOT IN: an IN on the status would lead the planner to the outbox's due index, and through
    # every delivered row.
    delivered = col(Outbox.status).not_in([OutboxStatus.PENDING, OutboxStatus.SENDING])
    await session.exec(update(Outbox).where(chosen, delivered).values(_PURGED_OUTBOX))
