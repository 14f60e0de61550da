"""What a running channel may ask of the bot besides intake: delivery reports and poll cursors.

Channels never touch the store (DESIGN.md); this is the narrow door they use instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from channels.base import DeliveryReport, InboundMessage, Receipt
from router.intake import Router
from store import Database, data, utcnow

log = logging.getLogger("router.host")


class RouterHost:
    """The `ChannelHost` the bot gives every channel."""

    def __init__(self, router: Router, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.router = router
        self.db: Database = router.db
        self.clock = clock

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

    async def load_cursor(self, channel: str, name: str) -> str | None:
        async with self.db.session() as session:
            return await data.get_cursor(session, channel=channel, name=name)

    async def save_cursor(self, channel: str, name: str, value: str) -> None:
        async with self.db.transaction() as session:
            await data.set_cursor(session, channel=channel, name=name, value=value, at=self.clock())

    async def lead(self, job: str) -> bool:
        return await self.db.lead(job)
