"""What staff do to tickets: claim, reply, reassign, resolve, reopen, and the review queue.

The terminal (`bot.py tickets`) uses it today; the Slack desk calls the same functions, so both
leave the same audit trail: every action is a ticket event with the staff member's id and name.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from knowledge import FaqEntry, KnowledgeError, KnowledgeHolder
from router.learning import OUT_OF_SCOPE, POSITIVE, FaqLearning
from router.lifecycle import RATING_BUTTONS, Lifecycle
from router.outgoing import send_to_citizen
from store import Contact, Database, Message, Session, Ticket, TicketEvent, TicketStatus, data

log = logging.getLogger("router.desk")


class TicketNotFound(LookupError):
    def __init__(self, reference: str) -> None:
        super().__init__(f"no ticket {reference}")


class DeskError(ValueError):
    """An action that makes no sense for this ticket; the message says why."""


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


@dataclass(frozen=True)
class ReviewItem:
    """A question waiting for a person to confirm (or edit) the likely FAQ answer."""

    ticket: Ticket
    question: str
    suggestions: Sequence[tuple[FaqEntry, float]]


class Desk:
    def __init__(
        self,
        db: Database,
        lifecycle: Lifecycle,
        knowledge: KnowledgeHolder,
        *,
        learning: FaqLearning | None = None,
    ) -> None:
        self.db = db
        self.lifecycle = lifecycle
        self.knowledge = knowledge
        self.learning = learning  # None when learning from staff is off

    async def report_knowledge_error(self, error: KnowledgeError) -> None:
        """A broken FAQ edit: the knowledge logger printed each problem; administrators hear of it in
        the desk's alerts inbox too."""
        log.error(
            "the FAQ edit was not taken (%d problem(s)); still answering from the last good version",
            len(error.problems),
        )
        feed = self.lifecycle.desk_feed
        if feed is None:
            return
        text = "The FAQ edit was not taken; still answering from the last good version:\n" + str(error)
        async with self.db.transaction() as session:
            await feed.alert(session, text[:2900], now=self.lifecycle.clock())
        self.lifecycle.outbox_written()

    # --- reading --------------------------------------------------------------------------

    async def list_tickets(
        self, *, statuses: Collection[str] | None = None, department: str | None = None, limit: int = 50
    ) -> Sequence[Ticket]:
        async with self.db.session() as session:
            return await data.list_tickets(session, statuses=statuses, department=department, limit=limit)

    async def show(self, reference: str) -> TicketView:
        async with self.db.session() as session:
            ticket = await self._ticket(session, reference)
            contact = await self._contact(session, ticket)
            messages = await data.ticket_messages(session, ticket_id=ticket.id or 0)
            events = await data.ticket_events(session, ticket_id=ticket.id or 0)
            return TicketView(ticket, contact, messages, events)

    async def review_queue(self, *, limit: int = 50) -> list[ReviewItem]:
        """Review tickets, oldest due first, with the question and the matcher's candidates."""
        base, _ = self.knowledge.current
        items = []
        async with self.db.session() as session:
            tickets = await data.list_tickets(
                session, statuses=[TicketStatus.REVIEW], limit=limit, most_urgent_first=True
            )
            for ticket in tickets:
                messages = await data.ticket_messages(session, ticket_id=ticket.id or 0)
                events = await data.ticket_events(session, ticket_id=ticket.id or 0)
                candidates: list[dict[str, Any]] = next(
                    (e.detail.get("candidates", []) for e in events if e.kind == "created"), []
                )
                suggestions = [
                    (entry, float(c["score"]))
                    for c in candidates
                    if (entry := base.get(str(c["entry"]))) is not None
                ]
                question = next((m.text for m in messages if m.direction == "in"), "")
                items.append(ReviewItem(ticket, question, suggestions))
        return items

    # --- acting ---------------------------------------------------------------------------

    async def claim(self, reference: str, *, staff: Staff) -> Ticket:
        """Take the ticket: it is in progress, with this staff member as its assignee."""
        now = self.lifecycle.clock()
        async with self.db.transaction() as session:
            ticket = await self._ticket(session, reference)
            started = await self._start_work(session, ticket, staff, now)
            if not started and ticket.status != TicketStatus.IN_PROGRESS:
                raise DeskError(
                    f"ticket {ticket.reference} is {ticket.status}; only a forwarded or reopened "
                    "ticket can be claimed"
                )
            ticket.assignee, ticket.assignee_name = staff.actor, staff.name
            await self._event(session, ticket, staff, "claimed")
            if started:  # the citizen hears that a person has it (not again when it changes hands)
                contact = await self._contact(session, ticket)
                await self.lifecycle.notify(session, ticket, contact, "claimed", now=now)
            if self.lifecycle.desk_feed is not None:
                await self.lifecycle.desk_feed.card(session, ticket, now=now)  # shows the assignee
        self.lifecycle.outbox_written()
        return ticket

    async def reply(self, reference: str, text: str, *, staff: Staff, source: str | None = None) -> Ticket:
        """Send the citizen a staff member's words on the ticket's channel. `source`: the staff
        message in the desk's thread it came from (its delivery is marked there); a reply from
        elsewhere (the command line) is copied into the thread instead."""
        text = _required(text, "a reply")
        now = self.lifecycle.clock()
        async with self.db.transaction() as session:
            ticket = await self._ticket(session, reference)
            contact = await self._contact(session, ticket)
            if ticket.status == TicketStatus.CLOSED:
                raise DeskError(f"ticket {ticket.reference} is closed; reopen it first")
            await self._start_work(session, ticket, staff, now)
            variables = self.lifecycle.notice_values(ticket, text=text)
            await send_to_citizen(
                session,
                contact,
                self.lifecycle.notices.render("staff_reply", ticket.language, **variables),
                ticket=ticket,
                author=staff.actor,
                author_name=staff.name,
                now=now,
                desk_source=source,
                notice="staff_reply",
                variables=variables,
            )
            await self._event(session, ticket, staff, "reply", text=text)
            if self.lifecycle.desk_feed is not None and source is None:
                await self.lifecycle.desk_feed.thread(
                    session, ticket, author="staff", author_name=staff.name, text=text, now=now
                )
            ticket.first_response_at = ticket.first_response_at or now
        self.lifecycle.outbox_written()
        return ticket

    async def note(self, reference: str, text: str, *, staff: Staff, public: bool = False) -> Ticket:
        """A note kept on the ticket, never sent to the citizen: internal, or `public` (shown on the
        ticket's public status page, /status/REFERENCE, for anyone with the reference)."""
        text = _required(text, "a public note" if public else "a note")
        async with self.db.transaction() as session:
            ticket = await self._ticket(session, reference)
            await self._event(session, ticket, staff, "public_note" if public else "note", text=text)
        return ticket

    async def reassign(self, reference: str, department: str, *, reason: str, staff: Staff) -> Ticket:
        """Send the ticket to another department, with a reason; the citizen hears the new one."""
        reason = _required(reason, "a reassignment")
        if department not in self.lifecycle.departments:
            raise DeskError(
                f"unknown department {department!r} (known: {', '.join(self.lifecycle.departments)})"
            )
        now = self.lifecycle.clock()
        async with self.db.transaction() as session:
            ticket = await self._ticket(session, reference)
            contact = await self._contact(session, ticket)
            if department == ticket.department and ticket.status != TicketStatus.REVIEW:
                raise DeskError(f"ticket {ticket.reference} is already with {department}")
            ticket.assignee = ticket.assignee_name = None
            # An example from an earlier resolution named the wrong department: the next one counts.
            await data.remove_ticket_example(session, ticket_id=ticket.id or 0)
            await self.lifecycle.forward(
                session,
                ticket,
                contact,
                department=department,
                reason=reason,
                actor=staff.actor,
                actor_name=staff.name,
                now=now,
            )
        self.lifecycle.outbox_written()
        return ticket

    async def resolve(self, reference: str, text: str = "", *, staff: Staff) -> Ticket:
        """Mark the ticket resolved, tell the citizen and ask for a 1-5 rating."""
        now = self.lifecycle.clock()
        async with self.db.transaction() as session:
            ticket = await self._ticket(session, reference)
            contact = await self._contact(session, ticket)
            await self.lifecycle.change_status(
                session,
                ticket,
                TicketStatus.RESOLVED,
                actor=staff.actor,
                actor_name=staff.name,
                now=now,
                detail={"text": text.strip()} if text.strip() else None,
            )
            ticket.resolved_at = ticket.rating_requested_at = now
            ticket.first_response_at = ticket.first_response_at or now
            await self._learn_department(session, ticket)
            await self.lifecycle.notify(
                session, ticket, contact, "resolved", now=now, text=text.strip(), buttons=RATING_BUTTONS
            )
        self.lifecycle.outbox_written()
        return ticket

    async def reopen(self, reference: str, *, reason: str, staff: Staff) -> Ticket:
        reason = _required(reason, "reopening")
        now = self.lifecycle.clock()
        async with self.db.transaction() as session:
            ticket = await self._ticket(session, reference)
            contact = await self._contact(session, ticket)
            await self.lifecycle.reopen(
                session,
                ticket,
                contact,
                actor=staff.actor,
                actor_name=staff.name,
                now=now,
                reason=reason,
            )
        self.lifecycle.outbox_written()
        return ticket

    async def send_review(
        self, reference: str, *, staff: Staff, entry_id: str | None = None, text: str | None = None
    ) -> Ticket:
        """Answer a review ticket: with an FAQ entry's answer (the top suggestion by default) or an
        edited text. What was sent is recorded, so the question can become a variant of the entry."""
        now = self.lifecycle.clock()
        base, _ = self.knowledge.current
        text_given, entry_given = text is not None, entry_id is not None
        async with self.db.transaction() as session:
            ticket = await self._ticket(session, reference)
            contact = await self._contact(session, ticket)
            if ticket.status != TicketStatus.REVIEW:
                raise DeskError(f"ticket {ticket.reference} is {ticket.status}, not waiting for review")
            entry_id = entry_id or ticket.category
            entry = base.get(entry_id) if entry_id else None
            if text is None:
                if entry is None:
                    raise DeskError(f"no FAQ entry {entry_id!r} to send; give the entry or an edited text")
                text = self.lifecycle.faq_answer(entry, ticket.language)
                if text is None:
                    raise DeskError(f"FAQ entry {entry.id} has no answer text")
            text = _required(text, "an answer")
            edited = entry is None or text not in entry.answer.values()
            ticket.faq_entry = entry.id if entry else None
            ticket.first_response_at = ticket.first_response_at or now
            await self.lifecycle.change_status(
                session,
                ticket,
                TicketStatus.ANSWERED,
                actor=staff.actor,
                actor_name=staff.name,
                now=now,
                detail={
                    "entry": ticket.faq_entry,
                    "edited": edited,
                },
            )
            await send_to_citizen(
                session,
                contact,
                self.lifecycle.answer_text(text, ticket.language),
                ticket=ticket,
                author=staff.actor,
                author_name=staff.name,
                now=now,
                notice="answer",
                variables={"text": text},
            )
            await self._event(session, ticket, staff, "review_sent", entry=ticket.faq_entry, text=text)
            if self.learning is not None:
                own_words = text_given and not entry_given
                await self._learn_from_review(
                    session, ticket, staff, entry, own_words=own_words, edited=edited
                )
        self.lifecycle.outbox_written()
        return ticket

    async def _learn_from_review(
        self,
        session: Session,
        ticket: Ticket,
        staff: Staff,
        entry: FaqEntry | None,
        *,
        own_words: bool,
        edited: bool,
    ) -> None:
        """Sent with an entry's answer: the citizen's text asks that entry. In staff's own words: the
        suggested entry did not answer it. An entry's answer that staff edited teaches neither."""
        assert self.learning is not None
        if own_words:
            kind, entry_id = OUT_OF_SCOPE, ticket.category
        elif entry is not None and not edited:
            kind, entry_id = POSITIVE, entry.id
        else:
            return
        await self.learning.record(
            session, ticket, kind=kind, entry_id=entry_id, actor=staff.actor, actor_name=staff.name
        )

    # --- helpers --------------------------------------------------------------------------

    async def _learn_department(self, session: Session, ticket: Ticket) -> None:
        """A resolved ticket teaches the department model: its first citizen message belongs to the
        department that resolved it (after a reassignment, the final one). Never a sensitive one."""
        if ticket.sensitive or not ticket.department or ticket.id is None:
            return
        first = await data.first_inbound(session, ticket_id=ticket.id)
        if first is None or not first.text.strip():
            return
        await data.set_ticket_example(
            session, ticket_id=ticket.id, text=first.text, department=ticket.department, at=ticket.created_at
        )

    async def _start_work(self, session: Session, ticket: Ticket, staff: Staff, now: datetime) -> bool:
        """A forwarded or reopened ticket is in progress once staff act on it; False if it was not."""
        if ticket.status not in (TicketStatus.FORWARDED, TicketStatus.REOPENED):
            return False
        await self.lifecycle.change_status(
            session, ticket, TicketStatus.IN_PROGRESS, actor=staff.actor, actor_name=staff.name, now=now
        )
        return True

    async def _event(
        self, session: Session, ticket: Ticket, staff: Staff, kind: str, **detail: object
    ) -> None:
        await data.add_event(
            session,
            ticket_id=ticket.id or 0,
            actor=staff.actor,
            actor_name=staff.name,
            kind=kind,
            detail=detail,
            at=self.lifecycle.clock(),
        )

    async def _ticket(self, session: Session, reference: str) -> Ticket:
        ticket = await data.get_ticket(session, reference=reference.strip())
        if ticket is None:
            raise TicketNotFound(reference)
        return ticket

    async def _contact(self, session: Session, ticket: Ticket) -> Contact:
        contact = await data.get_contact(session, contact_id=ticket.contact_id)
        assert contact is not None  # a foreign key guarantees it
        return contact


def _required(text: str, what: str) -> str:
    if not text.strip():
        raise DeskError(f"{what} needs some text")
    return text.strip()


__all__ = ["Desk", "DeskError", "ReviewItem", "Staff", "TicketNotFound", "TicketView"]
