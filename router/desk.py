"""What staff do to tickets: list, show, reply, resolve. The terminal (`bot.py tickets`) uses it
today; the Slack desk calls the same functions, so both leave the same audit trail."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from router.intake import Router
from store import Contact, Message, Ticket, TicketEvent, TicketStatus, data


class TicketNotFound(LookupError):
    def __init__(self, reference: str) -> None:
        super().__init__(f"no ticket {reference}")


@dataclass(frozen=True)
class Staff:
    """Who acts: an id the audit trail keeps ("cli:kim", later "slack:U123") and a display name."""

    id: str
    name: str

    @property
    def actor(self) -> str:
        return f"staff:{self.id}"


@dataclass(frozen=True)
class TicketView:
    ticket: Ticket
    contact: Contact
    messages: Sequence[Message]
    events: Sequence[TicketEvent]


class Desk:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.db = router.db

    async def list(
        self, *, statuses: Collection[str] | None = None, department: str | None = None, limit: int = 50
    ) -> Sequence[Ticket]:
        async with self.db.session() as session:
            return await data.list_tickets(session, statuses=statuses, department=department, limit=limit)

    async def show(self, reference: str) -> TicketView:
        async with self.db.session() as session:
            ticket = await self._ticket(session, reference)
            contact = await data.get_contact(session, contact_id=ticket.contact_id)
            assert contact is not None  # a foreign key guarantees it
            messages = await data.ticket_messages(session, ticket_id=ticket.id or 0)
            events = await data.ticket_events(session, ticket_id=ticket.id or 0)
            return TicketView(ticket, contact, messages, events)

    async def reply(self, reference: str, text: str, *, staff: Staff) -> Ticket:
        """Send the citizen a staff member's words on the ticket's channel."""
        text = text.strip()
        if not text:
            raise ValueError("a reply needs some text")
        now = self.router.clock()
        async with self.db.transaction() as session:
            ticket = await self._ticket(session, reference)
            contact = await self._contact(session, ticket)
            if ticket.status in (TicketStatus.FORWARDED, TicketStatus.REOPENED, TicketStatus.NEW):
                await self.router.change_status(
                    session,
                    ticket,
                    TicketStatus.IN_PROGRESS,
                    actor=staff.actor,
                    actor_name=staff.name,
                    now=now,
                )
            await self.router.send_to_citizen(
                session,
                ticket,
                contact,
                self.router.render_notice(ticket, "staff_reply", text=text),
                author=staff.actor,
                author_name=staff.name,
                now=now,
            )
            await data.add_event(
                session,
                ticket_id=ticket.id or 0,
                actor=staff.actor,
                actor_name=staff.name,
                kind="reply",
                detail={"text": text},
                at=now,
            )
            ticket.first_response_at = ticket.first_response_at or now
            ticket.updated_at = now
        self.router.outbox_written()
        return ticket

    async def resolve(self, reference: str, text: str = "", *, staff: Staff) -> Ticket:
        """Mark the ticket resolved and tell the citizen, with the staff member's closing words."""
        now = self.router.clock()
        async with self.db.transaction() as session:
            ticket = await self._ticket(session, reference)
            contact = await self._contact(session, ticket)
            await self.router.change_status(
                session,
                ticket,
                TicketStatus.RESOLVED,
                actor=staff.actor,
                actor_name=staff.name,
                now=now,
                detail={"text": text.strip()} if text.strip() else None,
            )
            ticket.resolved_at = now
            ticket.first_response_at = ticket.first_response_at or now
            await self.router.notify(session, ticket, contact, "resolved", now=now, text=text.strip())
        self.router.outbox_written()
        return ticket

    async def _ticket(self, session: AsyncSession, reference: str) -> Ticket:
        ticket = await data.get_ticket(session, reference=reference.strip())
        if ticket is None:
            raise TicketNotFound(reference)
        return ticket

    async def _contact(self, session: AsyncSession, ticket: Ticket) -> Contact:
        contact = await data.get_contact(session, contact_id=ticket.contact_id)
        assert contact is not None
        return contact
