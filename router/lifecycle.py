"""The lifecycle steps every part of the router takes (intake, the staff desk, the sweep): change
a ticket's status (only along DESIGN.md's "Ticket lifecycle", with an event and the desk's card),
forward it to a department with a due time, reopen it, and tell the citizen in their language."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from channels.base import Button
from knowledge import FaqEntry
from router.calendar import WorkingCalendar
from router.config import DepartmentConfig, RouterConfig
from router.deskfeed import DeskFeed
from router.notices import Notices
from router.outgoing import send_to_citizen
from store import Contact, Session, Ticket, data
from store import TicketStatus as S

# Who acted, in the audit trail (staff are "staff:<id>").
BOT = "bot"
CITIZEN = "citizen"
SYSTEM = "system"
# A ticket in these states is with a department: its card is shown (and updated) in the desk...
CARD_STATUSES = frozenset({S.FORWARDED, S.IN_PROGRESS, S.REOPENED, S.RESOLVED})
# ... and a later citizen message goes into its thread (after a resolution: the rating and comment).
THREAD_STATUSES = CARD_STATUSES
RATING_BUTTONS = tuple(Button(label=str(n), value=str(n)) for n in range(1, 6))

TRANSITIONS: dict[S, frozenset[S]] = {
    S.NEW: frozenset({S.ANSWERED, S.REVIEW, S.FORWARDED}),
    S.ANSWERED: frozenset({S.CLOSED, S.REOPENED, S.FORWARDED}),
    S.REVIEW: frozenset({S.ANSWERED, S.FORWARDED}),
    S.FORWARDED: frozenset({S.IN_PROGRESS, S.RESOLVED, S.FORWARDED}),
    S.IN_PROGRESS: frozenset({S.RESOLVED, S.FORWARDED}),
    S.RESOLVED: frozenset({S.CLOSED, S.REOPENED}),
    S.REOPENED: frozenset({S.IN_PROGRESS, S.RESOLVED, S.FORWARDED}),
    S.CLOSED: frozenset(),
}


class InvalidTransition(ValueError):
    def __init__(self, reference: str, current: str, wanted: str) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[S(current)])) or "none: the ticket is closed"
        super().__init__(f"ticket {reference} is {current}; it cannot become {wanted} (allowed: {allowed})")


def check_transition(reference: str, current: str, wanted: str) -> None:
    if S(wanted) not in TRANSITIONS[S(current)]:
        raise InvalidTransition(reference, current, wanted)


class Lifecycle:
    """The steps, with what they need: the city's rules, its calendar and notices, and the desk."""

    def __init__(
        self,
        *,
        config: RouterConfig,
        departments: Mapping[str, DepartmentConfig],
        notices: Notices,
        calendar: WorkingCalendar,
        clock: Callable[[], datetime],
        desk_feed: DeskFeed | None = None,
        public_url: str = "",
    ) -> None:
        self.config = config
        self.departments = departments
        self.notices = notices
        self.calendar = calendar
        self.clock = clock
        self.desk_feed = desk_feed  # None without a staff channel (Slack)
        self.public_url = public_url.rstrip("/")  # where the public status pages are (/status/REFERENCE)
        self._outbox_listeners: list[Callable[[], None]] = []

    def on_outbox(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each commit that queued outgoing messages (wakes the dispatcher)."""
        self._outbox_listeners.append(listener)

    def outbox_written(self) -> None:
        for listener in self._outbox_listeners:
            listener()

    def handling_due(self, ticket: Ticket, now: datetime) -> datetime:
        """When a forwarded ticket is due: its category's or department's working hours from now."""
        hours = self.config.category_hours.get(ticket.category or "")
        if hours is None:
            department = self.departments.get(ticket.department or "")
            hours = department.handling_hours if department else 24.0
        return self.calendar.add_working_hours(now, hours)

    async def change_status(
        self,
        session: Session,
        ticket: Ticket,
        status: S,
        *,
        actor: str,
        now: datetime,
        actor_name: str | None = None,
        detail: dict[str, object] | None = None,
    ) -> None:
        check_transition(ticket.reference, ticket.status, status)
        await data.add_event(
            session,
            ticket_id=data.id_of(ticket),
            actor=actor,
            actor_name=actor_name,
            kind="status",
            from_status=ticket.status,
            to_status=status,
            detail=dict(detail or {}),
            at=now,
        )
        previous, ticket.status = ticket.status, status
        ticket.updated_at = now
        if self.desk_feed is not None and (status in CARD_STATUSES or previous == S.RESOLVED):
            await self.desk_feed.card(session, ticket, now=now)

    async def forward(
        self,
        session: Session,
        ticket: Ticket,
        contact: Contact,
        *,
        department: str,
        reason: str,
        actor: str,
        now: datetime,
        actor_name: str | None = None,
    ) -> None:
        """Send a ticket to a department with a due time from its handling hours, and say so."""
        ticket.department = department
        ticket.due_at = self.handling_due(ticket, now)
        ticket.reminded_at = ticket.escalated_at = None
        await self.change_status(
            session,
            ticket,
            S.FORWARDED,
            actor=actor,
            actor_name=actor_name,
            now=now,
            detail={"department": department, "reason": reason, "due_at": ticket.due_at.isoformat()},
        )
        await self.notify(
            session, ticket, contact, "sensitive_received" if ticket.sensitive else "forwarded", now=now
        )

    async def notify(
        self,
        session: Session,
        ticket: Ticket,
        contact: Contact,
        notice: str,
        *,
        now: datetime,
        text: str = "",
        buttons: Sequence[Button] = (),
    ) -> None:
        variables = self.notice_values(ticket, text=text)
        await send_to_citizen(
            session,
            contact,
            self.notices.render(notice, ticket.language, **variables),
            ticket=ticket,
            author=BOT,
            now=now,
            buttons=buttons,
            notice=notice,
            variables=variables,
        )

    def render_notice(self, ticket: Ticket, notice: str, *, text: str = "") -> str:
        """A notice about this ticket in the ticket's language."""
        return self.notices.render(notice, ticket.language, **self.notice_values(ticket, text=text))

    def notice_values(self, ticket: Ticket, *, text: str = "") -> dict[str, str]:
        """What a notice about this ticket is filled with, in the ticket's language."""
        department = self.departments.get(ticket.department or "")
        return {
            "reference": ticket.reference,
            "department": department.display_name(ticket.language) if department else "",
            "due": self.notices.due(ticket.due_at, ticket.language) if ticket.due_at else "",
            "status": self.notices.status_name(ticket.status, ticket.language),
            "text": text,
            "link": self.status_link(ticket),
        }

    def status_link(self, ticket: Ticket) -> str:
        """The ticket's public status page; none for a sensitive ticket (its page answers "not found")."""
        if ticket.sensitive or not self.public_url:
            return ""
        return f"{self.public_url}/status/{ticket.reference}"

    def faq_answer(self, entry: FaqEntry, language: str) -> str | None:
        """An entry's answer in the language, else the city's default language, English or Korean."""
        found = entry.answer_in(language, (self.config.default_language, "en", "ko"))
        return found[1] if found else None

    def answer_text(self, answer: str, language: str) -> str:
        """An FAQ answer as sent automatically: the answer, then how to reach a person instead."""
        return f"{answer}\n{self.notices.render('answered_footer', language)}"

    async def reopen(
        self,
        session: Session,
        ticket: Ticket,
        contact: Contact,
        *,
        actor: str,
        now: datetime,
        actor_name: str | None = None,
        reason: str = "the citizen wrote back",
    ) -> None:
        """Put a resolved or answered ticket back with its department, with a new due time."""
        ticket.department = ticket.department or self.config.triage_department
        ticket.due_at = self.handling_due(ticket, now)
        ticket.resolved_at = None
        ticket.reminded_at = ticket.escalated_at = None
        await self.change_status(
            session,
            ticket,
            S.REOPENED,
            actor=actor,
            actor_name=actor_name,
            now=now,
            detail={"reason": reason, "due_at": ticket.due_at.isoformat()},
        )
        await self.notify(session, ticket, contact, "reopened", now=now)
