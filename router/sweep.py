"""The periodic sweeps: reminders before a ticket is due, escalation when it is late (with a new
expected date for the citizen), closing resolved or answered tickets once the reopen window has
passed; and, less often, the retention purge of what citizens wrote and where they wrote from;
once a month, the monthly report (router/report.py).

The database is the truth for every deadline: each action sets a mark on the ticket in the same
transaction as its event and notice, and a ticket is picked only while its mark is older than its
due time. So a restart neither loses nor repeats anything, and several instances sweeping one
PostgreSQL skip each other's rows (FOR UPDATE SKIP LOCKED). APScheduler only says "now".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from router.learning import ACCEPTED, FaqLearning
from router.lifecycle import SYSTEM, Lifecycle
from router.report import MonthlyPoster
from store import Database, Session, Ticket, TicketStatus, data, retention

log = logging.getLogger("router.sweep")
T = TypeVar("T")

# Tickets someone still owes an answer: a reminder or an escalation applies to these.
_WAITING = (TicketStatus.REVIEW, TicketStatus.FORWARDED, TicketStatus.IN_PROGRESS, TicketStatus.REOPENED)
_BATCH = 200


@dataclass
class SweepResult:
    reminded: int = 0
    escalated: int = 0
    closed: int = 0


class Sweeper:
    def __init__(
        self,
        db: Database,
        lifecycle: Lifecycle,
        *,
        learning: FaqLearning | None = None,
        report: MonthlyPoster | None = None,
    ) -> None:
        self.db = db
        self.lifecycle = lifecycle
        self.learning = learning  # None when learning from staff is off
        self.report = report  # None when the monthly report is off
        self._reporting = asyncio.Lock()
        self._scheduler: AsyncIOScheduler | None = None
        self._busy = asyncio.Lock()  # held while a sweep runs, so stopping can let it finish
        # The purge has its own: a backlog's first purge takes minutes, and deadlines cannot wait.
        self._purging = asyncio.Lock()
        self._stopped = False

    def start(self) -> None:
        """Sweep every `lifecycle.sweep_seconds` and purge every `retention.sweep_minutes`, each once
        at start too (to catch up after downtime)."""
        config = self.lifecycle.config
        scheduler = AsyncIOScheduler(timezone=config.zone)
        self._every(scheduler, self._run, config.lifecycle.sweep_seconds, "lifecycle-sweep")
        if config.retention.days is not None:
            self._every(scheduler, self._run_purge, config.retention.sweep_minutes * 60, "retention-purge")
        if self.report is not None:
            self._every(scheduler, self._run_report, self.report.check_seconds, "monthly-report")
        scheduler.start()
        self._scheduler = scheduler

    def _every(
        self, scheduler: AsyncIOScheduler, job: Callable[[], Awaitable[None]], seconds: float, name: str
    ) -> None:
        scheduler.add_job(
            job,
            "interval",
            seconds=seconds,
            next_run_time=datetime.now(self.lifecycle.config.zone),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            id=name,
        )

    async def stop(self) -> None:
        """Stop scheduling, and wait for a sweep under way to commit (before the store closes)."""
        self._stopped = True  # a job APScheduler already queued must not start after this
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        async with self._busy, self._purging, self._reporting:  # a purge stops after its current batch
            pass

    async def _guarded(self, lock: asyncio.Lock, name: str, action: Callable[[], Awaitable[T]]) -> T | None:
        """`action` under `lock`, unless stopping; a failure is logged and the next run tries again
        (the store may be down)."""
        if self._stopped:
            return None
        try:
            async with lock:
                return await action()
        except Exception:
            log.exception("%s failed", name)
            return None

    async def _run(self) -> None:
        result = await self._guarded(self._busy, "lifecycle sweep", self.sweep_once)
        if result and (result.reminded or result.escalated or result.closed):
            log.info(
                "sweep: %d reminded, %d escalated, %d closed",
                result.reminded,
                result.escalated,
                result.closed,
            )

    async def _run_purge(self) -> None:
        purged = await self._guarded(self._purging, "retention purge", self.purge_once)
        if purged and (purged.tickets or purged.messages or purged.contacts or purged.memories):
            log.info(
                "retention: purged %d tickets, %d messages, %d contacts, %d channel memories",
                purged.tickets,
                purged.messages,
                purged.contacts,
                purged.memories,
            )

    async def _run_report(self) -> None:
        if self.report is not None:
            await self._guarded(self._reporting, "monthly report", self.report.post_if_due)

    async def purge_once(self, progress: Callable[[int, int], None] | None = None) -> retention.Purged:
        """Purge everything past the retention period (nothing when the period is unset)."""
        config = self.lifecycle.config.retention
        if config.days is None:
            return retention.Purged()
        now = self.lifecycle.clock()
        return await retention.purge_expired(
            self.db,
            before=now - timedelta(days=config.days),
            now=now,
            batch=config.batch,
            going_on=lambda: not self._stopped,
            progress=progress,
        )

    async def sweep_once(self) -> SweepResult:
        """One pass over what is due; each batch is one transaction."""
        total = SweepResult()
        while True:
            result = await self._sweep_batch()
            total.reminded += result.reminded
            total.escalated += result.escalated
            total.closed += result.closed
            if max(result.reminded, result.escalated, result.closed) < _BATCH:
                return total

    async def _sweep_batch(self) -> SweepResult:
        now = self.lifecycle.clock()
        lifecycle = self.lifecycle.config.lifecycle
        result = SweepResult()
        async with self.db.transaction() as session:
            for ticket in await data.claim_overdue(session, statuses=_WAITING, now=now, limit=_BATCH):
                await self._escalate(session, ticket, now)
                result.escalated += 1
            remind_by = now + timedelta(hours=lifecycle.remind_before_hours)
            due_soon = await data.claim_due_soon(
                session, statuses=_WAITING, now=now, until=remind_by, limit=_BATCH
            )
            for ticket in due_soon:
                ticket.reminded_at = now
                await data.add_event(
                    session,
                    ticket_id=ticket.id or 0,
                    actor=SYSTEM,
                    kind="reminder",
                    at=now,
                    detail={
                        "due_at": ticket.due_at.isoformat() if ticket.due_at else None,
                        "department": ticket.department,
                    },
                )
                result.reminded += 1
            window = timedelta(hours=lifecycle.reopen_window_hours)
            for ticket in await data.claim_settled(session, before=now - window, limit=_BATCH):
                await self._accepted(session, ticket)
                await self.lifecycle.change_status(
                    session,
                    ticket,
                    TicketStatus.CLOSED,
                    actor=SYSTEM,
                    now=now,
                    detail={"reason": "the reopen window has passed"},
                )
                ticket.closed_at = now
                result.closed += 1
        if result.escalated:
            self.lifecycle.outbox_written()
        return result

    async def _accepted(self, session: Session, ticket: Ticket) -> None:
        """An automatic answer that closes without a "0" was accepted: a label for the FAQ's thresholds."""
        learning = self.learning
        if (
            learning is not None
            and ticket.status == TicketStatus.ANSWERED
            and ticket.faq_entry
            and await data.answered_automatically(session, ticket_id=ticket.id or 0)
        ):
            await learning.record(session, ticket, kind=ACCEPTED, entry_id=ticket.faq_entry, actor=SYSTEM)

    async def _escalate(self, session: Session, ticket: Ticket, now: datetime) -> None:
        """Late: raise its priority, tell the department and the citizen, and set a new due time."""
        late_since = ticket.due_at
        ticket.due_at = self.lifecycle.calendar.add_working_hours(
            now, self.lifecycle.config.lifecycle.late_extension_hours
        )
        ticket.escalated_at = now
        ticket.reminded_at = None  # the new due time gets its own reminder
        ticket.escalations += 1
        ticket.priority += 1
        ticket.updated_at = now
        department = self.lifecycle.departments.get(ticket.department or "")
        await data.add_event(
            session,
            ticket_id=ticket.id or 0,
            actor=SYSTEM,
            kind="escalated",
            at=now,
            detail={
                "was_due": late_since.isoformat() if late_since else None,
                "new_due": ticket.due_at.isoformat(),
                "escalations": ticket.escalations,
                "lead": department.lead if department else None,
            },
        )
        contact = await data.get_contact(session, contact_id=ticket.contact_id)
        assert contact is not None
        await self.lifecycle.notify(session, ticket, contact, "late", now=now)
        if self.lifecycle.desk_feed is not None:
            due = self.lifecycle.notices.due(ticket.due_at, self.lifecycle.desk_feed.language)
            await self.lifecycle.desk_feed.thread(
                session,
                ticket,
                author="system",
                text=f"Late: escalated ({ticket.escalations}); the citizen was told the new time, {due}.",
                mention=department.lead if department else None,
                now=now,
            )


__all__ = ["SweepResult", "Sweeper"]
