"""The staff desk's feed: what the department inboxes (Slack channels) are shown, as outbox rows.

The router decides what staff see; the staff channel's adapter (channels/slack.py) only renders it.
Each row is an `OutboundMessage` on the desk channel whose `recipient` is an inbox (a department's
`slack_channel`, the review or alerts inbox), whose `reply_to` is the ticket's reference (the key of
its thread) and whose `desk` is one of the desk items of channels/desk.py: a card (queued as a
request, filled from the store just before it is sent), a thread line, a delivery mark, a review
post or an alert.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from channels.base import OutboundMessage
from channels.desk import (
    Alert,
    Card,
    CardRequest,
    DeliveryMark,
    DeskItem,
    ReviewPost,
    Suggestion,
    ThreadLine,
)
from router.config import DepartmentConfig, DeskConfig
from router.medialinks import MediaLinks
from router.notices import Notices
from store import Session, Ticket, TicketStatus, data

# What a department can do to a ticket in each state, as the card's buttons.
_ACTIONS = {
    TicketStatus.FORWARDED: ("claim", "resolve", "reassign"),
    TicketStatus.REOPENED: ("claim", "resolve", "reassign"),
    TicketStatus.IN_PROGRESS: ("resolve", "reassign"),
    TicketStatus.REVIEW: ("claim", "reassign"),
}


def mask(address: str) -> str:
    """A contact as staff may see it by default: enough to tell two apart, not to call them."""
    if len(address) <= 4:
        return "****"
    return f"{address[:3]}{'*' * max(4, len(address) - 7)}{address[-4:]}"


class DeskFeed:
    """Writes the desk's rows in the caller's transaction (so a card never goes missing)."""

    def __init__(
        self,
        *,
        channel: str,
        config: DeskConfig,
        departments: Mapping[str, DepartmentConfig],
        notices: Notices,
        default_language: str,
        media_links: MediaLinks | None = None,
    ) -> None:
        self.channel = channel
        self.media_links = media_links
        self.config = config
        self.departments = departments
        self.notices = notices
        self.language = config.language or default_language

    def inbox(self, department: str | None) -> str | None:
        found = self.departments.get(department or "")
        return found.slack_channel if found else None

    async def card(self, session: Session, ticket: Ticket, *, now: datetime) -> None:
        """Queue the ticket's card for its inbox; what it shows is read when it is sent (`render_card`),
        so a card queued mid-change shows the ticket as it ended up."""
        inbox = self.inbox(ticket.department)
        if inbox is None:
            return
        await self._queue(session, inbox, ticket, CardRequest(ticket.reference), ticket.reference, now=now)

    async def render_card(self, session: Session, reference: str) -> Card | None:
        """The card's content from the store as it is now (None when the ticket is gone)."""
        ticket = await data.get_ticket(session, reference=reference)
        if ticket is None:
            return None
        contact = await data.get_contact(session, contact_id=ticket.contact_id)
        department = self.departments.get(ticket.department or "")
        first = await data.first_inbound(session, ticket_id=ticket.id or 0)
        photos = [int(a["media_id"]) for a in (first.attachments if first else []) if a.get("media_id")]
        address = contact.address if contact else ""
        return Card(
            reference=ticket.reference,
            status=ticket.status,
            status_name=self.notices.status_name(ticket.status, self.language),
            department=ticket.department,
            department_name=department.display_name(self.language) if department else ticket.department,
            origin=ticket.channel,
            language=ticket.language,
            category=ticket.category,
            text=first.text if first else "",
            photos=tuple(photos),
            # Signed, expiring links the staff tool can show the photos from.
            photo_links=tuple(self.media_links.link(m) for m in photos) if self.media_links else (),
            contact=address if department and department.show_full_contact else mask(address),
            due=self.notices.due(ticket.due_at, self.language) if ticket.due_at else None,
            assignee=ticket.assignee_name,
            sensitive=ticket.sensitive,
            actions=_ACTIONS.get(TicketStatus(ticket.status), ()),
            departments=tuple((key, d.display_name(self.language)) for key, d in self.departments.items()),
        )

    async def thread(
        self,
        session: Session,
        ticket: Ticket,
        *,
        author: str,
        text: str,
        now: datetime,
        author_name: str | None = None,
        photos: list[int] | None = None,
        mention: str | None = None,
    ) -> None:
        inbox = self.inbox(ticket.department)
        if inbox is None:
            return
        line = ThreadLine(
            reference=ticket.reference,
            author=author,
            text=text,
            author_name=author_name,
            photos=tuple(photos or ()),
            mention=mention,
        )
        await self._queue(session, inbox, ticket, line, f"{ticket.reference} {author}: {text}", now=now)

    async def mark(
        self,
        session: Session,
        ticket: Ticket,
        *,
        source: str,
        delivered: bool,
        detail: str,
        now: datetime,
    ) -> None:
        inbox = self.inbox(ticket.department)
        if inbox is None:
            return
        mark = DeliveryMark(reference=ticket.reference, source=source, delivered=delivered, detail=detail)
        await self._queue(session, inbox, ticket, mark, f"{ticket.reference}: {detail}", now=now)

    async def review(
        self,
        session: Session,
        ticket: Ticket,
        *,
        question: str,
        suggestions: Sequence[Suggestion],
        now: datetime,
    ) -> None:
        if self.config.review_inbox is None:
            return
        post = ReviewPost(
            reference=ticket.reference,
            question=question,
            language=ticket.language,
            due=self.notices.due(ticket.due_at, self.language) if ticket.due_at else None,
            suggestions=tuple(suggestions),
        )
        await self._queue(
            session, self.config.review_inbox, ticket, post, f"{ticket.reference} review: {question}", now=now
        )

    async def alert(
        self,
        session: Session,
        text: str,
        *,
        now: datetime,
        ticket: Ticket | None = None,
        inbox: str | None = None,  # another inbox than the alerts inbox (the monthly report's)
    ) -> None:
        inbox = inbox or self.config.alerts_inbox
        if inbox is None:
            return
        await self._queue(session, inbox, ticket, Alert(text), text, now=now)

    async def _queue(
        self,
        session: Session,
        inbox: str,
        ticket: Ticket | None,
        desk: DeskItem,
        fallback: str,
        *,
        now: datetime,
    ) -> None:
        # The desk rows of one ticket go to one inbox in order; the dispatcher keeps that order.
        key = f"desk-{desk.kind}-{ticket.id if ticket else 0}-{uuid.uuid4().hex[:16]}"
        message = OutboundMessage(
            channel=self.channel,
            recipient=inbox,
            text=fallback[:3000],
            idempotency_key=key,
            reply_to=ticket.reference if ticket else None,
            desk=desk,
        )
        ticket_id = ticket.id if ticket else None
        await data.queue_outgoing(session, payload=message.to_payload(), ticket_id=ticket_id, now=now)
