"""What happens around a delivery, on the staff desk's side: a card filled from the store just
before it is sent, a staff reply marked delivered or not in its thread, a failure for good told in
the ticket's thread and the alerts inbox. The dispatcher calls these; without a desk they do
nothing."""

from __future__ import annotations

import dataclasses

from channels.base import OutboundMessage
from channels.desk import CardRequest
from router.lifecycle import Lifecycle
from store import Database, Outbox, data


class DeliveryHooks:
    """The dispatcher's calls around a send, for the staff desk (nothing to do without one)."""

    def __init__(self, db: Database, lifecycle: Lifecycle) -> None:
        self.db = db
        self.lifecycle = lifecycle

    async def prepare(self, message: OutboundMessage) -> OutboundMessage:
        """Just before a send: a desk card is filled from the store as the ticket is now."""
        request = message.desk
        feed = self.lifecycle.desk_feed
        if feed is None or not isinstance(request, CardRequest):
            return message
        async with self.db.session() as session:
            card = await feed.render_card(session, request.reference)
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
        feed = self.lifecycle.desk_feed
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
        now = self.lifecycle.clock()
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
        self.lifecycle.outbox_written()
