"""What the city sends: a message to a citizen becomes a stored message and an outbox row in the
caller's transaction (the dispatcher delivers it later), and what happens around its delivery on
the staff desk's side (a card filled just before it is sent; a staff reply marked delivered or not
in its thread; a failure told in the alerts inbox)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime

from channels.base import Button, OutboundMessage
from channels.desk import CardRequest
from router.deskfeed import DeskFeed
from store import Contact, Database, Direction, Message, Outbox, Session, Ticket, data


async def send_to_citizen(
    session: Session,
    contact: Contact,
    text: str,
    *,
    ticket: Ticket | None,
    author: str,
    now: datetime,
    author_name: str | None = None,
    buttons: Sequence[Button] = (),
    reply_to: str | None = None,
    desk_source: str | None = None,
) -> Message:
    """Store an outgoing message and queue it on the contact's channel, in the caller's transaction.
    `reply_to` answers a provider's message in place (on X: a public reply to that post);
    `desk_source` is the staff message in the desk this reply came from (its delivery is marked
    there)."""
    message = await data.add_message(
        session,
        message=Message(
            ticket_id=ticket.id if ticket else None,
            contact_id=data.id_of(contact),
            direction=Direction.OUT,
            channel=contact.channel,
            author=author,
            author_name=author_name,
            text=text,
            buttons=[{"label": b.label, "value": b.value} for b in buttons],
            language=ticket.language if ticket else contact.language,
            reply_to=reply_to,
            raw={"desk_source": desk_source} if desk_source else None,
            created_at=now,
        ),
        tracked=False,
    )
    key = f"msg-{message.id}"
    outgoing = OutboundMessage(
        channel=contact.channel,
        recipient=contact.address,
        text=text,
        idempotency_key=key,
        buttons=tuple(buttons),
        reply_to=reply_to,
    )
    await data.queue_outgoing(
        session,
        payload=outgoing.to_payload(),
        ticket_id=ticket.id if ticket else None,
        message_id=message.id,
        now=now,
    )
    return message


class DeliveryHooks:
    """The dispatcher's calls around a send, for the staff desk (nothing to do without one)."""

    def __init__(
        self,
        db: Database,
        desk_feed: DeskFeed | None,
        *,
        clock: Callable[[], datetime],
        outbox_written: Callable[[], None],
    ) -> None:
        self.db = db
        self.desk_feed = desk_feed
        self.clock = clock
        self.outbox_written = outbox_written

    async def prepare(self, message: OutboundMessage) -> OutboundMessage:
        """Just before a send: a desk card is filled from the store as the ticket is now."""
        request = message.desk
        if self.desk_feed is None or not isinstance(request, CardRequest):
            return message
        async with self.db.session() as session:
            card = await self.desk_feed.render_card(session, request.reference)
        if card is None:
            return message
        text = f"{card.reference} [{card.status_name}] {card.department_name}: {card.text}"
        return dataclasses.replace(message, desk=card, text=text[:3000])

    async def sent(self, row: Outbox) -> None:
        await self._after(row, delivered=True)

    async def failed_for_good(self, row: Outbox, error: str) -> None:
        await self._after(row, delivered=False, error=error)

    async def _after(self, row: Outbox, *, delivered: bool, error: str | None = None) -> None:
        """After a citizen-bound message was sent or failed for good: mark the staff message it came
        from in the desk, and put a failure in the ticket's thread and the alerts inbox."""
        feed = self.desk_feed
        if feed is None or row.channel == feed.channel or row.message_id is None:
            return
        if delivered and row.ticket_id is None:
            return
        # Read first: most sent messages are not staff replies, and on SQLite a write transaction
        # here would queue every send behind the one writer.
        async with self.db.session() as session:
            message = await data.get_message(session, message_id=row.message_id)
        source = (message.raw or {}).get("desk_source") if message else None
        if delivered and source is None:
            return
        now = self.clock()
        async with self.db.transaction() as session:
            ticket = await data.get_ticket_by_id(session, ticket_id=row.ticket_id) if row.ticket_id else None
            detail = (
                f"not delivered to the citizen ({row.channel}): {error}" if not delivered else "delivered"
            )
            if ticket is not None and source:
                await feed.mark(session, ticket, source=source, delivered=delivered, detail=detail, now=now)
            if not delivered:
                if ticket is not None and not source:
                    await feed.thread(session, ticket, author="system", text=detail, now=now)
                where = f"ticket {ticket.reference}" if ticket else f"outbox row {row.id}"
                await feed.alert(
                    session, f"{where}: a message on {row.channel} {detail}", now=now, ticket=ticket
                )
        self.outbox_written()
