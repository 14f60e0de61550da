"""What a running channel may ask of the bot besides intake: delivery reports, a memory kept across
restarts (`remember` / `recall`), leadership among instances, and staff actions.

Channels never touch the store (DESIGN.md); this is the narrow door they use instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from channels.base import DeliveryReport, InboundMessage, Receipt, StaffAction, StaffResult
from router.desk import Desk, DeskError, Staff, TicketNotFound
from router.intake import Router
from store import Database, data, utcnow

log = logging.getLogger("router.host")


class RouterHost:
    """The `ChannelHost` the bot gives every channel."""

    def __init__(self, router: Router, desk: Desk, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.router = router
        self.desk = desk
        self.db: Database = router.db
        self.clock = clock
        # (channel, route) for each reply a channel gave in its provider's response (the metrics).
        self.sent_observers: list[Callable[[str, str], None]] = []

    async def intake(self, message: InboundMessage) -> Receipt:
        return await self.router.intake(message)

    async def delivery_report(self, report: DeliveryReport) -> bool:
        async with self.db.transaction() as session:
            row, changed = await data.record_delivery(
                session,
                channel=report.channel,
                status=report.status,
                at=report.at,
                idempotency_key=report.idempotency_key,
                provider_message_id=report.provider_message_id,
                error=report.error,
            )
            if row is None:
                log.warning(
                    "%s: a delivery report (%s) matches no outgoing message (key %s, id %s)",
                    report.channel,
                    report.status,
                    report.idempotency_key,
                    report.provider_message_id,
                )
                return False
            # The provider took the message but could not hand it over: staff must know.
            if report.failed and changed and row.ticket_id is not None:
                await data.add_event(
                    session,
                    ticket_id=row.ticket_id,
                    actor="system",
                    kind="delivery_failed",
                    at=self.clock(),
                    detail={
                        "outbox": row.id,
                        "channel": row.channel,
                        "status": report.status,
                        "error": (report.error or "")[:500],
                    },
                )
        return True

    async def recall(self, channel: str, name: str) -> str | None:
        async with self.db.session() as session:
            return await data.recall(session, channel=channel, name=name)

    async def remember(self, channel: str, name: str, value: str) -> None:
        async with self.db.transaction() as session:
            await data.remember(session, channel=channel, name=name, value=value, at=self.clock())

    async def answered(self, channel: str, keys: Sequence[str], *, route: str = "answer") -> None:
        async with self.db.transaction() as session:
            count = await data.mark_answered(
                session, channel=channel, keys=keys, provider_message_id=route, now=self.clock()
            )
        for _ in range(count):
            for observer in self.sent_observers:
                observer(channel, route)

    async def lead(self, job: str) -> bool:
        return await self.db.lead(job)

    async def staff_action(self, action: StaffAction) -> StaffResult:
        """A staff member's action from the desk, if their department lets them (ticket events name
        them); the result says what to tell them."""
        staff = Staff(id=action.staff_id, name=action.staff_name)
        reference = action.reference or ""
        try:
            if not await self._may_act(action, reference):
                return StaffResult(
                    False, f"You are not on the staff list of ticket {reference}'s department."
                )
            if action.kind == "reply":
                ticket = await self.desk.reply(reference, action.text, staff=staff, source=action.source_id)
                return StaffResult(True, f"Reply to {ticket.reference} queued for {ticket.channel}.")
            if action.kind == "note":
                await self.desk.note(reference, action.text, staff=staff)
                return StaffResult(True, "Note kept on the ticket; the citizen does not see it.")
            if action.kind == "public_note":
                await self.desk.note(reference, action.text, staff=staff, public=True)
                return StaffResult(True, "Public note shown on the ticket's public page.")
            if action.kind == "claim":
                ticket = await self.desk.claim(reference, staff=staff)
                return StaffResult(True, f"{ticket.reference} is yours.")
            if action.kind == "resolve":
                ticket = await self.desk.resolve(reference, action.text, staff=staff)
                return StaffResult(True, f"{ticket.reference} resolved; the citizen is told.")
            if action.kind == "reassign":
                ticket = await self.desk.reassign(
                    reference, action.department or "", reason=action.reason, staff=staff
                )
                return StaffResult(True, f"{ticket.reference} sent to {ticket.department}.")
            if action.kind in ("review_send", "review_edit"):
                text = action.text if action.kind == "review_edit" else None
                ticket = await self.desk.send_review(reference, staff=staff, entry_id=action.entry, text=text)
                return StaffResult(True, f"Answer sent to {ticket.reference}.")
            view = await self.desk.show(reference)
            zone = self.router.config.zone
            lines = tuple(
                f"{e.at.astimezone(zone):%m-%d %H:%M} {e.kind}"
                + (f" {e.from_status or ''}->{e.to_status}" if e.to_status else "")
                + f" by {e.actor_name or e.actor}"
                # Why a ticket went where it did: a keyword, an FAQ entry, the department model, triage.
                + (f" ({e.detail['reason']})" if e.to_status == "forwarded" and "reason" in e.detail else "")
                for e in view.events
            )
            t = view.ticket
            return StaffResult(True, f"{t.reference}: {t.status}, {t.department or '-'}", lines)
        except (TicketNotFound, DeskError) as exc:
            return StaffResult(False, str(exc))

    async def _may_act(self, action: StaffAction, reference: str) -> bool:
        async with self.db.session() as session:
            ticket = await data.get_ticket(session, reference=reference)
        if ticket is None:
            return True  # the desk says "no ticket" itself
        department = self.router.lifecycle.departments.get(ticket.department or "")
        allowed = department.staff if department else []
        user = action.staff_id.split(":", 1)[-1]
        if ticket.sensitive and not allowed:
            # A restricted report is handled in its private channel, where anyone there may act; a
            # lookup from elsewhere tells nothing unless the restricted department lists its staff.
            return action.kind != "lookup"
        return not allowed or action.staff_id in allowed or user in allowed
