"""Intake: one citizen message becomes stored state and queued replies in one transaction.

Exactly-once: the (channel, provider message id) pair is unique, so a provider's retry finds the
message already stored and changes nothing. The caller acknowledges the provider only after
`intake` returned, i.e. after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import Button, ConversationItem, InboundMessage, OutboundMessage, Receipt
from knowledge import KnowledgeHolder, Match, detect_language
from router.config import DepartmentConfig, RouterConfig
from router.departments import KeywordRules, Route, choose_department
from router.lifecycle import check_transition
from router.notices import Notices
from store import Contact, Database, Direction, Message, Outbox, Ticket, TicketStatus, data, utcnow

log = logging.getLogger("router")

BOT = "bot"
CITIZEN = "citizen"


@dataclass(frozen=True)
class Decision:
    """What to do with a new question: answer it from an FAQ entry, or forward it."""

    matches: Sequence[Match]
    answer: Match | None
    route: Route


class Router:
    def __init__(
        self,
        *,
        db: Database,
        knowledge: KnowledgeHolder,
        config: RouterConfig,
        departments: Mapping[str, DepartmentConfig],
        notices: Notices,
        answer_threshold: float,
        suggest_threshold: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.knowledge = knowledge
        self.config = config
        self.departments = departments
        self.notices = notices
        self.answer_threshold = answer_threshold
        self.suggest_threshold = suggest_threshold
        self.clock = clock
        self._rules = KeywordRules(departments)
        self._listeners: list[Callable[[], None]] = []

    def on_outbox(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each commit that queued outgoing messages (wakes the dispatcher)."""
        self._listeners.append(listener)

    def outbox_written(self) -> None:
        for listener in self._listeners:
            listener()

    # --- deciding -------------------------------------------------------------------------

    def decide(self, text: str, language: str) -> Decision:
        _, matcher = self.knowledge.current
        matches = matcher.match(text, language)
        top = matches[0] if matches else None
        answer = top if top and top.score >= self.answer_threshold and top.entry.handoff == "auto" else None
        route = choose_department(
            text,
            matches,
            rules=self._rules,
            suggest_threshold=self.suggest_threshold,
            triage=self.config.triage_department,
        )
        if answer is not None and answer.entry.department:
            route = Route(answer.entry.department, f"faq:{answer.entry.id}")
        return Decision(matches=matches, answer=answer, route=route)

    def language_of(self, message: InboundMessage, contact: Contact) -> str:
        fallback = message.language_hint or contact.language or self.config.default_language
        language = detect_language(message.text, default=fallback)
        return self.notices.language_for(language, self.config.default_language)

    # --- intake ---------------------------------------------------------------------------

    async def intake(self, message: InboundMessage) -> Receipt:
        # Match before the transaction: it needs nothing from the store, and on SQLite the
        # transaction holds the write lock that every other intake waits for.
        hint = message.language_hint or self.config.default_language
        decision = self.decide(message.text, detect_language(message.text, default=hint))
        try:
            async with self.db.transaction() as session:
                receipt = await self._intake(session, message, decision)
        except IntegrityError:
            # The same message arrived twice at the same moment and the other delivery won.
            async with self.db.transaction() as session:
                stored = await data.find_inbound(
                    session, channel=message.channel, provider_message_id=message.provider_message_id
                )
                if stored is None:
                    raise
                return Receipt(duplicate=True, reference=await self._reference_of(session, stored))
        if not receipt.duplicate:
            self.outbox_written()
        return receipt

    async def _intake(self, session: AsyncSession, message: InboundMessage, decision: Decision) -> Receipt:
        stored = await data.find_inbound(
            session, channel=message.channel, provider_message_id=message.provider_message_id
        )
        if stored is not None:
            return Receipt(duplicate=True, reference=await self._reference_of(session, stored))

        now = self.clock()
        contact = await data.get_or_create_contact(
            session, channel=message.channel, address=message.sender, display_name=message.sender_name
        )
        language = self.language_of(message, contact)
        contact.language = language
        open_ticket = await data.open_ticket_of(session, contact_id=_id(contact))

        if decision.answer is None and open_ticket is not None:
            ticket = open_ticket
            await self._store_inbound(session, ticket, contact, message, language)
            await data.add_event(session, ticket_id=_id(ticket), actor=CITIZEN, kind="message", at=now)
            await self.notify(session, ticket, contact, "joined", now=now)
            ticket.updated_at = now
            return Receipt(duplicate=False, reference=ticket.reference)

        ticket = await data.add_ticket(
            session,
            ticket=Ticket(
                reference=await data.next_reference(session, year=now.astimezone(self.config.zone).year),
                contact_id=_id(contact),
                channel=message.channel,
                language=language,
                department=decision.route.department,
                created_at=now,
                updated_at=now,
            ),
        )
        await self._store_inbound(session, ticket, contact, message, language)
        await data.add_event(
            session,
            ticket_id=_id(ticket),
            actor=CITIZEN,
            kind="created",
            to_status=TicketStatus.NEW,
            at=now,
            detail={
                "candidates": [
                    {"entry": m.entry.id, "score": round(m.score, 4)} for m in decision.matches[:3]
                ]
            },
        )
        if decision.answer is not None:
            await self._answer(session, ticket, contact, decision.answer, now=now)
        else:
            await self._forward(session, ticket, contact, decision.route, now=now)
        return Receipt(duplicate=False, reference=ticket.reference)

    async def _answer(
        self, session: AsyncSession, ticket: Ticket, contact: Contact, match: Match, *, now: datetime
    ) -> None:
        found = match.entry.answer_in(ticket.language, (self.config.default_language, "en", "ko"))
        if found is None:  # the loader makes this impossible for handoff: auto; stay safe anyway
            raise RuntimeError(f"FAQ entry {match.entry.id} has no answer text")
        ticket.faq_entry = match.entry.id
        ticket.first_response_at = now
        await self.change_status(
            session,
            ticket,
            TicketStatus.ANSWERED,
            actor=BOT,
            now=now,
            detail={"entry": match.entry.id, "score": round(match.score, 4), "question": match.question},
        )
        await self.send_to_citizen(session, ticket, contact, found[1], author=BOT, now=now)

    async def _forward(
        self, session: AsyncSession, ticket: Ticket, contact: Contact, route: Route, *, now: datetime
    ) -> None:
        department = self.departments[route.department]
        ticket.due_at = now + timedelta(hours=department.handling_hours)
        await self.change_status(
            session,
            ticket,
            TicketStatus.FORWARDED,
            actor=BOT,
            now=now,
            detail={
                "department": route.department,
                "reason": route.reason,
                "due_at": ticket.due_at.isoformat(),
            },
        )
        await self.notify(session, ticket, contact, "forwarded", now=now)

    async def _store_inbound(
        self, session: AsyncSession, ticket: Ticket, contact: Contact, message: InboundMessage, language: str
    ) -> Message:
        return await data.add_message(
            session,
            message=Message(
                ticket_id=ticket.id,
                contact_id=_id(contact),
                direction=Direction.IN,
                channel=message.channel,
                provider_message_id=message.provider_message_id,
                author=CITIZEN,
                author_name=message.sender_name,
                text=message.text,
                attachments=[vars(a) for a in message.attachments],
                location=vars(message.location) if message.location else None,
                language=language,
                reply_to=message.reply_to,
                raw=message.raw,
                created_at=message.received_at,
            ),
        )

    # --- shared steps (also used by the staff desk) ---------------------------------------

    async def change_status(
        self,
        session: AsyncSession,
        ticket: Ticket,
        status: TicketStatus,
        *,
        actor: str,
        now: datetime,
        actor_name: str | None = None,
        detail: dict[str, object] | None = None,
    ) -> None:
        check_transition(ticket.reference, ticket.status, status)
        await data.add_event(
            session,
            ticket_id=_id(ticket),
            actor=actor,
            actor_name=actor_name,
            kind="status",
            from_status=ticket.status,
            to_status=status,
            detail=dict(detail or {}),
            at=now,
        )
        ticket.status = status
        ticket.updated_at = now

    async def notify(
        self,
        session: AsyncSession,
        ticket: Ticket,
        contact: Contact,
        notice: str,
        *,
        now: datetime,
        text: str = "",
    ) -> None:
        body = self.render_notice(ticket, notice, text=text)
        await self.send_to_citizen(session, ticket, contact, body, author=BOT, now=now)

    def render_notice(self, ticket: Ticket, notice: str, *, text: str = "") -> str:
        """A notice about this ticket in the ticket's language."""
        department = self.departments.get(ticket.department or "")
        return self.notices.render(
            notice,
            ticket.language,
            reference=ticket.reference,
            department=department.display_name(ticket.language) if department else "",
            due=self.notices.due(ticket.due_at, ticket.language) if ticket.due_at else "",
            text=text,
        )

    async def send_to_citizen(
        self,
        session: AsyncSession,
        ticket: Ticket,
        contact: Contact,
        text: str,
        *,
        author: str,
        now: datetime,
        author_name: str | None = None,
        buttons: Sequence[Button] = (),
    ) -> Message:
        """Store an outgoing message and queue it on the ticket's channel, in the caller's transaction."""
        message = await data.add_message(
            session,
            message=Message(
                ticket_id=ticket.id,
                contact_id=_id(contact),
                direction=Direction.OUT,
                channel=contact.channel,
                author=author,
                author_name=author_name,
                text=text,
                buttons=[{"label": b.label, "value": b.value} for b in buttons],
                language=ticket.language,
                created_at=now,
            ),
        )
        key = f"msg-{message.id}"
        outgoing = OutboundMessage(
            channel=contact.channel,
            recipient=contact.address,
            text=text,
            idempotency_key=key,
            buttons=tuple(buttons),
        )
        await data.add_outbox(
            session,
            row=Outbox(
                idempotency_key=key,
                ticket_id=ticket.id,
                message_id=message.id,
                channel=contact.channel,
                recipient=contact.address,
                payload=outgoing.to_payload(),
                next_attempt_at=now,
                created_at=now,
            ),
        )
        return message

    async def _reference_of(self, session: AsyncSession, message: Message) -> str | None:
        if message.ticket_id is None:
            return None
        ticket = await data.get_ticket_by_id(session, ticket_id=message.ticket_id)
        return ticket.reference if ticket else None

    # --- what a pull channel shows --------------------------------------------------------

    async def conversation(self, channel: str, address: str) -> list[ConversationItem]:
        async with self.db.session() as session:
            contact = await data.find_contact(session, channel=channel, address=address)
            if contact is None:
                return []
            messages = await data.conversation(session, contact_id=_id(contact))
        return [
            ConversationItem(
                id=f"m{m.id}",
                sender="citizen" if m.direction == Direction.IN else "city",
                text=m.text,
                at=m.created_at.astimezone(self.config.zone),
                buttons=tuple(Button(**b) for b in m.buttons),
            )
            for m in messages
        ]


def _id(row: Contact | Ticket) -> int:
    if row.id is None:
        raise RuntimeError(f"{type(row).__name__} was not flushed")
    return row.id
