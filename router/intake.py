"""Intake: one citizen message becomes stored state and queued replies in one transaction.

Exactly-once: the (channel, provider message id) pair is unique, so a provider's retry finds the
message already stored and changes nothing. The caller acknowledges the provider only after
`intake` returned, i.e. after the commit.

What a message does, in this order (DESIGN.md, "Ticket lifecycle"):
  a provider's command                 -> STOP: nothing more is sent until START; HELP, /start: a notice
  a status question ("2026-000123?")   -> the state of that ticket, if it is the sender's
  a lone 1-5 after a rating request    -> the rating; the next message soon after is its comment
  "0" / "person" after an FAQ answer   -> the ticket goes to its department
  a sensitive report                   -> a new restricted ticket, never answered automatically
  a confident FAQ match                -> a new ticket, answered now
  anything while a ticket is open      -> joins it
  anything soon after a resolution     -> reopens that ticket (an automatic answer is not reopened:
                                          "0" reaches a person, anything else is a new question)
  anything else                        -> a new ticket: sent to review (a likely answer) or forwarded
A public message (an X mention) is answered in public once per ticket, with the reference only;
everything else goes to the sender privately.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from channels.base import InboundMessage, OutboundMessage, Receipt
from channels.desk import Suggestion
from knowledge import KnowledgeHolder, detect_language
from router.decision import Decision, Rules, decide_message
from router.departments import department_rules
from router.learning import NEGATIVE, FaqLearning
from router.lifecycle import BOT, CITIZEN, THREAD_STATUSES, Lifecycle
from router.outgoing import send_to_citizen
from router.replies import asks_for_person, rating_in, status_question
from router.routing import DepartmentLearner
from store import (
    OPEN_STATUSES,
    AlreadyStored,
    Contact,
    Database,
    Direction,
    Media,
    Message,
    Session,
    Ticket,
    TicketStatus,
    data,
)
from store.group import GroupCommit, writer_lanes

log = logging.getLogger("router.intake")

# Intakes in one transaction at most. A batch holds SQLite's one writer for its whole length (a few
# ms a message), and the dispatcher records its sends between batches: 16 keeps a reply's way out
# under a second at 64 clients (bench/intake.py: 8 costs a tenth of the throughput, 200 doubles
# the time to a visible reply).
INTAKE_BATCH = 16


@dataclass(frozen=True)
class IntakeObserved:
    """One message taken in, for the operator's metrics: its channel, what it did (answered, review,
    forwarded, joined, reopened, status, rating, command or duplicate), how long its intake took
    (waiting for its group commit included), and the language of an automatic answer. Nothing about
    the citizen."""

    channel: str
    outcome: str
    seconds: float
    answered_language: str | None


class Router:
    """Takes citizens' messages in: decides, stores and answers each in one (group) transaction."""

    def __init__(
        self,
        *,
        db: Database,
        knowledge: KnowledgeHolder,
        lifecycle: Lifecycle,
        learning: FaqLearning | None = None,
    ) -> None:
        self.db = db
        self.knowledge = knowledge
        self.lifecycle = lifecycle
        self.config = config = lifecycle.config
        self.learning = learning  # None when learning from staff is off
        self.clock = lifecycle.clock
        restricted = config.sensitive.department or config.triage_department
        self.rules = Rules(
            sensitive=config.sensitive.rule(),
            departments=department_rules(lifecycle.departments),
            triage=config.triage_department,
            restricted=restricted,
        )
        # The learned department model never picks the triage desk or the restricted inbox: a text it
        # is unsure of goes to triage anyway, and only a sensitive report goes to the restricted one.
        self.learner = DepartmentLearner(
            db,
            config.routing,
            departments=[d for d in lifecycle.departments if d not in (config.triage_department, restricted)],
            clock=lifecycle.clock,
        )
        self._media_listeners: list[Callable[[], None]] = []
        self._intake_observers: list[Callable[[IntakeObserved], None]] = []
        # Several lanes on PostgreSQL (each a connection); SQLite has one writer at a time anyway.
        self.writer = GroupCommit(db, lanes=writer_lanes(db), max_batch=INTAKE_BATCH)

    def on_intake(self, observer: Callable[[IntakeObserved], None]) -> None:
        """Call `observer` after each message taken in (or found to be a duplicate)."""
        self._intake_observers.append(observer)

    def on_media(self, listener: Callable[[], None]) -> None:
        """Call `listener` after a commit that queued attachments to fetch (wakes the media fetcher)."""
        self._media_listeners.append(listener)

    def decide(self, text: str, language: str, *, chosen: str | None = None) -> Decision:
        """`chosen`: the department the citizen's form chose (InboundMessage.department)."""
        _, matcher = self.knowledge.current
        known = chosen if chosen in self.lifecycle.departments else None
        return decide_message(text, language, matcher, self.rules, model=self.learner.route, chosen=known)

    def language_of(self, message: InboundMessage, contact: Contact) -> str:
        fallback = message.language_hint or contact.language or self.config.default_language
        # A command ("HELP", "/start") is a keyword, not the citizen's language.
        language = fallback if message.command else detect_language(message.text, default=fallback)
        return self.lifecycle.notices.language_for(language, self.config.default_language)

    # --- intake ---------------------------------------------------------------------------

    async def intake(self, message: InboundMessage) -> Receipt:
        # Match before the transaction: it needs nothing from the store, and on SQLite the
        # transaction holds the write lock that every other intake waits for.
        hint = message.language_hint or self.config.default_language
        decision = self.decide(
            message.text, detect_language(message.text, default=hint), chosen=message.department
        )
        started = time.perf_counter()

        async def work(session: Session) -> tuple[Receipt, _Step | None]:
            return await self._intake(session, message, decision)

        try:
            # Intakes that arrive together share a transaction (store/group.py); one citizen's
            # messages keep their order.
            receipt, step = await self.writer.run(work, key=f"{message.channel}:{message.sender}")
        except AlreadyStored:
            # The same message arrived twice at the same moment and the other delivery won.
            async with self.db.session() as session:
                stored = await data.find_inbound(
                    session, channel=message.channel, provider_message_id=message.provider_message_id
                )
                if stored is None:
                    raise
                receipt, step = (
                    Receipt(duplicate=True, reference=await self._reference_of(session, stored)),
                    None,
                )
        seconds = time.perf_counter() - started
        outcome = "duplicate" if step is None or receipt.duplicate else step.outcome
        language = step.contact.language if step is not None and outcome == "answered" else None
        for observer in self._intake_observers:
            observer(IntakeObserved(message.channel, outcome, seconds, language))
        log.info(
            "intake: a %s message: %s in %.0f ms",
            message.channel,
            outcome,
            seconds * 1000,
            extra={"channel": message.channel, "reference": receipt.reference, "outcome": outcome},
        )
        if not receipt.duplicate:
            self.lifecycle.outbox_written()
            if message.attachments:
                for listener in self._media_listeners:
                    listener()
        return receipt

    async def _intake(
        self, session: Session, message: InboundMessage, decision: Decision
    ) -> tuple[Receipt, _Step | None]:
        stored = await data.find_inbound(
            session, channel=message.channel, provider_message_id=message.provider_message_id
        )
        if stored is not None:
            return Receipt(duplicate=True, reference=await self._reference_of(session, stored)), None

        now = self.clock()
        contact = await data.get_or_create_contact(
            session, channel=message.channel, address=message.sender, display_name=message.sender_name
        )
        language = self.language_of(message, contact)
        contact.language = language
        inbound = await self._store_inbound(session, contact, message, language)
        step = _Step(self, session, contact, inbound, now)
        receipt = await self._handle(session, step, message, decision, language)
        if message.answer_window_seconds is not None:
            # The provider waits for the answer: the channel gives these replies in its response.
            payloads = await data.hold_replies(
                session,
                contact_id=data.id_of(contact),
                after_message_id=data.id_of(inbound),
                until=now + timedelta(seconds=message.answer_window_seconds),
            )
            replies = tuple(OutboundMessage.from_payload(payload) for payload in payloads)
            receipt = dataclasses.replace(receipt, replies=replies)
        desk_feed = self.lifecycle.desk_feed
        if desk_feed is not None and inbound.ticket_id is not None and not step.created:
            # A later message on a ticket a department has: into the ticket's thread.
            ticket = await data.get_ticket_by_id(session, ticket_id=inbound.ticket_id)
            if ticket is not None and ticket.status in THREAD_STATUSES:
                photos = [a["media_id"] for a in inbound.attachments if a.get("media_id")]
                await desk_feed.thread(
                    session, ticket, author="citizen", text=message.text, photos=photos, now=now
                )
        if message.public and inbound.ticket_id is not None:
            # Seen by everyone: only the reference goes back in public, once per ticket (X refuses a
            # repeated text), and everything else privately.
            ticket = await data.get_ticket_by_id(session, ticket_id=inbound.ticket_id)
            if ticket is not None and not await data.has_public_reply(session, ticket_id=inbound.ticket_id):
                text = self.lifecycle.render_notice(ticket, "public_reply")
                await send_to_citizen(
                    session, contact, text, ticket=ticket, author=BOT, now=now, reply_to=message.reply_to
                )
        return receipt, step

    async def _handle(
        self, session: Session, step: _Step, message: InboundMessage, decision: Decision, language: str
    ) -> Receipt:
        now, contact = step.now, step.contact
        # START (or "yes") only means something to a contact who said STOP: otherwise it is a message.
        resuming = message.command == "unstop" and contact.opted_out_at is not None
        if message.command in ("start", "help", "stop") or resuming:
            return await step.command(message.command or "")
        reference = status_question(message.text)
        if reference is not None:
            return await step.status(reference)
        latest = await self._thread_ticket(session, contact, message.reference)
        latest = latest or await data.latest_ticket_of(session, contact_id=data.id_of(contact))
        if message.command == "status":
            # "/status" without a reference: the latest ticket, if there is one.
            return await step.status(latest.reference) if latest else await step.command("help")
        if latest is not None:
            lifecycle = self.config.lifecycle
            rating = rating_in(message.text)
            if rating is not None and latest.rating_requested_at and latest.rating is None:
                return await step.rate(latest, rating)
            comment_window = timedelta(minutes=lifecycle.rating_comment_minutes)
            commenting = (
                latest.rated_at and latest.rating_comment is None and now - latest.rated_at <= comment_window
            )
            # A new question the FAQ answers, or a sensitive report, is never taken for a comment.
            if commenting and decision.answer is None and not decision.sensitive:
                return await step.comment(latest)
            if latest.status == TicketStatus.ANSWERED and asks_for_person(
                message.text, lifecycle.person_words
            ):
                return await step.to_person(latest)
        if decision.sensitive:
            return await step.new_ticket(decision, language)
        if decision.answer is None and latest is not None:
            if latest.status in OPEN_STATUSES:
                return await step.join(latest)
            # Only a resolved ticket reopens: after an automatic answer the citizen says "0" to
            # reach a person about it, and anything else is a new question routed on its own.
            window = timedelta(hours=self.config.lifecycle.reopen_window_hours)
            resolved = latest.status == TicketStatus.RESOLVED and latest.resolved_at is not None
            if resolved and latest.resolved_at is not None and now - latest.resolved_at <= window:
                return await step.reopen(latest)
        return await step.new_ticket(decision, language)

    async def _store_inbound(
        self, session: Session, contact: Contact, message: InboundMessage, language: str
    ) -> Message:
        stored = await data.add_message(
            session,
            message=Message(
                contact_id=data.id_of(contact),
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
        if message.attachments:
            # Provider links expire: each attachment is queued for copying into the store, due now by
            # the bot's clock (a provider's timestamp may be skewed, and the fetcher's age limit and
            # backoff run on the bot's clock too).
            queued_at = self.clock()
            kept = []
            for attachment in message.attachments:
                media = await data.add_media(
                    session,
                    media=Media(
                        message_id=stored.id or 0,
                        channel=message.channel,
                        source_url=attachment.url,
                        content_type=attachment.content_type,
                        next_attempt_at=queued_at,
                        created_at=queued_at,
                    ),
                )
                kept.append({**vars(attachment), "media_id": media.id})
            stored.attachments = kept
        return stored

    @staticmethod
    async def _thread_ticket(session: Session, contact: Contact, reference: str | None) -> Ticket | None:
        """The ticket a provider's thread names (an e-mail's reply), when it is this contact's."""
        if reference is None:
            return None
        ticket = await data.get_ticket(session, reference=reference)
        return ticket if ticket is not None and ticket.contact_id == contact.id else None

    async def _reference_of(self, session: Session, message: Message) -> str | None:
        if message.ticket_id is None:
            return None
        ticket = await data.get_ticket_by_id(session, ticket_id=message.ticket_id)
        return ticket.reference if ticket else None


@dataclass
class _Step:
    """One inbound message being handled: the session, the contact and the stored message."""

    router: Router
    session: Session
    contact: Contact
    inbound: Message
    now: datetime
    created: bool = False  # the message opened a new ticket
    # What the message did, for the operator's metrics: answered, review, forwarded, joined,
    # reopened, status, rating or command.
    outcome: str = ""

    @property
    def lifecycle(self) -> Lifecycle:
        return self.router.lifecycle

    def _attach(self, ticket: Ticket) -> None:
        self.inbound.ticket_id = ticket.id
        ticket.updated_at = self.now

    async def _event(self, ticket: Ticket, kind: str, **detail: object) -> None:
        await data.add_event(
            self.session, ticket_id=data.id_of(ticket), actor=CITIZEN, kind=kind, at=self.now, detail=detail
        )

    async def status(self, reference: str) -> Receipt:
        self.outcome = "status"
        ticket = await data.get_ticket(self.session, reference=reference)
        if ticket is None or ticket.contact_id != self.contact.id:
            # The same answer whether the ticket is someone else's or does not exist: nothing leaks.
            text = self.lifecycle.notices.render(
                "status_unknown", self.contact.language or "", reference=reference
            )
            await send_to_citizen(self.session, self.contact, text, ticket=None, author=BOT, now=self.now)
            return Receipt(duplicate=False, reference=None)
        self._attach(ticket)
        await self._event(ticket, "status_asked")
        notice = "status" if ticket.status in OPEN_STATUSES and ticket.due_at else "status_done"
        await self.lifecycle.notify(self.session, ticket, self.contact, notice, now=self.now)
        return Receipt(duplicate=False, reference=ticket.reference)

    async def command(self, command: str) -> Receipt:
        """What a provider's keyword asks for: a welcome, help, or stopping and restarting texts."""
        self.outcome = "command"
        language = self.contact.language or ""
        if command == "stop":
            # The provider answers STOP itself (Twilio does); from now on nothing is sent here.
            self.contact.opted_out_at = self.now
            self.session.add(self.contact)
            return Receipt(duplicate=False)
        if command == "unstop":
            self.contact.opted_out_at = None
            self.session.add(self.contact)
            if self.contact.channel != "sms":
                return Receipt(duplicate=False)  # an unblocked Telegram bot: /start follows if anything
            notice = "opted_in"
        elif command == "start":
            notice = "welcome"
        else:
            notice = "help_sms" if self.contact.channel == "sms" else "help"
        text = self.lifecycle.notices.render(notice, language)
        await send_to_citizen(self.session, self.contact, text, ticket=None, author=BOT, now=self.now)
        return Receipt(duplicate=False)

    async def rate(self, ticket: Ticket, rating: int) -> Receipt:
        self.outcome = "rating"
        self._attach(ticket)
        ticket.rating, ticket.rated_at = rating, self.now
        await self._event(ticket, "rated", rating=rating)
        await self.lifecycle.notify(self.session, ticket, self.contact, "rated", now=self.now)
        return Receipt(duplicate=False, reference=ticket.reference)

    async def comment(self, ticket: Ticket) -> Receipt:
        self.outcome = "rating"
        self._attach(ticket)
        ticket.rating_comment = self.inbound.text
        await self._event(ticket, "rating_comment")
        await self.lifecycle.notify(self.session, ticket, self.contact, "comment_thanks", now=self.now)
        return Receipt(duplicate=False, reference=ticket.reference)

    async def to_person(self, ticket: Ticket) -> Receipt:
        self.outcome = "forwarded"
        self._attach(ticket)
        learning = self.router.learning
        if (
            learning is not None
            and ticket.faq_entry
            and await data.answered_automatically(self.session, ticket_id=data.id_of(ticket))
        ):
            # The automatic answer did not answer the citizen's question: a label of what not to answer.
            await learning.record(
                self.session, ticket, kind=NEGATIVE, entry_id=ticket.faq_entry, actor=CITIZEN
            )
        department = ticket.department or self.router.config.triage_department
        await self.lifecycle.forward(
            self.session,
            ticket,
            self.contact,
            department=department,
            reason="asked for a person",
            actor=CITIZEN,
            now=self.now,
        )
        return Receipt(duplicate=False, reference=ticket.reference)

    async def join(self, ticket: Ticket) -> Receipt:
        self.outcome = "joined"
        self._attach(ticket)
        await self._event(ticket, "message")
        await self.lifecycle.notify(self.session, ticket, self.contact, "joined", now=self.now)
        return Receipt(duplicate=False, reference=ticket.reference)

    async def reopen(self, ticket: Ticket) -> Receipt:
        self.outcome = "reopened"
        self._attach(ticket)
        await self.lifecycle.reopen(self.session, ticket, self.contact, actor=CITIZEN, now=self.now)
        return Receipt(duplicate=False, reference=ticket.reference)

    async def new_ticket(self, decision: Decision, language: str) -> Receipt:
        router, lifecycle, now = self.router, self.lifecycle, self.now
        self.outcome = "answered" if decision.answer else "review" if decision.review else "forwarded"
        top = decision.answer or decision.review
        ticket = await data.add_ticket(
            self.session,
            ticket=Ticket(
                reference=await data.next_reference(
                    self.session, year=now.astimezone(router.config.zone).year
                ),
                contact_id=data.id_of(self.contact),
                channel=self.contact.channel,
                language=language,
                department=decision.route.department,
                category=top.entry.id if top else _category(decision),
                sensitive=decision.sensitive,
                created_at=now,
                updated_at=now,
            ),
        )
        self._attach(ticket)
        self.created = True
        await data.add_event(
            self.session,
            ticket_id=data.id_of(ticket),
            actor=CITIZEN,
            kind="created",
            to_status=TicketStatus.NEW,
            at=now,
            # Sensitive reports keep no FAQ candidates: nothing about them is suggested anywhere.
            detail={
                "candidates": []
                if decision.sensitive
                else [{"entry": m.entry.id, "score": round(m.score, 4)} for m in decision.matches[:3]]
            },
        )
        if decision.answer is not None:
            answer = lifecycle.faq_answer(decision.answer.entry, language)
            if answer is None:  # the loader makes this impossible for handoff: auto; stay safe anyway
                raise RuntimeError(f"FAQ entry {decision.answer.entry.id} has no answer text")
            ticket.faq_entry = decision.answer.entry.id
            ticket.first_response_at = now
            await lifecycle.change_status(
                self.session,
                ticket,
                TicketStatus.ANSWERED,
                actor=BOT,
                now=now,
                detail={
                    "entry": ticket.faq_entry,
                    "score": round(decision.answer.score, 4),
                    "question": decision.answer.question,
                },
            )
            text = lifecycle.answer_text(answer, language)
            await send_to_citizen(
                self.session,
                self.contact,
                text,
                ticket=ticket,
                author=BOT,
                now=now,
                notice="answer",
                variables={"text": answer},
            )
        elif decision.review is not None:
            ticket.due_at = lifecycle.calendar.same_day_due(now)
            await lifecycle.change_status(
                self.session,
                ticket,
                TicketStatus.REVIEW,
                actor=BOT,
                now=now,
                detail={
                    "entry": decision.review.entry.id,
                    "score": round(decision.review.score, 4),
                    "due_at": ticket.due_at.isoformat(),
                },
            )
            await lifecycle.notify(self.session, ticket, self.contact, "received", now=now)
            if lifecycle.desk_feed is not None:
                suggestions = [
                    Suggestion(m.entry.id, round(m.score, 4), lifecycle.faq_answer(m.entry, language))
                    for m in decision.matches[:3]
                    if m.entry.handoff == "auto"
                ]
                await lifecycle.desk_feed.review(
                    self.session, ticket, question=self.inbound.text, suggestions=suggestions, now=now
                )
        else:
            await lifecycle.forward(
                self.session,
                ticket,
                self.contact,
                department=decision.route.department,
                reason=decision.route.reason,
                actor=BOT,
                now=now,
            )
        return Receipt(duplicate=False, reference=ticket.reference)


def _category(decision: Decision) -> str | None:
    reason = decision.route.reason
    return reason.split(":", 1)[1] if reason.startswith("faq:") else None
