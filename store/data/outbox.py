"""The outbox: what waits to be sent, claimed in batches, finished, and the delivery reports."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.data.common import insert_row
from store.models import Contact, Message, Outbox, OutboxStatus

# What a provider says last about a message; an earlier step reported late never replaces it.
FINAL_DELIVERY_STATUSES = frozenset({"delivered", "undelivered", "failed", "read"})


async def add_outbox(session: AsyncSession, *, row: Outbox) -> Outbox:
    return await insert_row(session, row)


async def queue_outgoing(
    session: AsyncSession,
    *,
    payload: dict[str, Any],
    ticket_id: int | None,
    now: datetime,
    message_id: int | None = None,
) -> Outbox:
    """Queue an outgoing message (an `OutboundMessage.to_payload()`) to be sent from `now` on."""
    row = Outbox(
        idempotency_key=payload["idempotency_key"],
        ticket_id=ticket_id,
        message_id=message_id,
        channel=payload["channel"],
        recipient=payload["recipient"],
        payload=payload,
        next_attempt_at=now,
        created_at=now,
    )
    return await insert_row(session, row)


async def hold_replies(
    session: AsyncSession, *, contact_id: int, after_message_id: int, until: datetime
) -> list[dict[str, Any]]:
    """The messages queued to a contact after its message `after_message_id` (in this transaction:
    the replies to it), held back from the dispatcher until `until`; their payloads, in order."""
    replies = select(Message.id).where(
        col(Message.contact_id) == contact_id, col(Message.id) > after_message_id
    )
    rows = (
        await session.exec(
            select(Outbox.id, Outbox.payload)
            .where(col(Outbox.message_id).in_(replies), col(Outbox.status) == OutboxStatus.PENDING)
            .order_by(col(Outbox.id))
        )
    ).all()
    if rows:
        await session.exec(
            update(Outbox)
            .where(col(Outbox.id).in_([row_id for row_id, _ in rows]))
            .values(next_attempt_at=until)
            .execution_options(synchronize_session=False)
        )
    return [dict(payload) for _, payload in rows]


async def mark_answered(
    session: AsyncSession, *, channel: str, keys: Collection[str], provider_message_id: str, now: datetime
) -> int:
    """Record held replies as sent in the provider's own response; how many were still waiting (a
    row the dispatcher took meanwhile is its to finish)."""
    if not keys:
        return 0
    result = await session.exec(
        update(Outbox)
        .where(
            col(Outbox.channel) == channel,
            col(Outbox.idempotency_key).in_(list(keys)),
            col(Outbox.status) == OutboxStatus.PENDING,
        )
        .values(status=OutboxStatus.SENT, sent_at=now, provider_message_id=provider_message_id)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


async def claim_outbox(
    session: AsyncSession,
    *,
    channels: Collection[str],
    now: datetime,
    lease: timedelta,
    limit: int,
    claimed_by: str = "",
) -> list[Outbox]:
    """Claim due rows for these channels: pending ones whose time has come, and ones whose
    sender's lease ran out (it crashed mid-send). Several instances claim disjoint rows. A row taken
    from a sender that died keeps, in `unsure_since`, when that sender's attempt began: it may have
    reached the provider."""
    due = or_(
        and_(col(Outbox.status) == OutboxStatus.PENDING, col(Outbox.next_attempt_at) <= now),
        and_(col(Outbox.status) == OutboxStatus.SENDING, col(Outbox.claimed_until) < now),
    )
    ids = (
        select(Outbox.id)
        .where(col(Outbox.channel).in_(list(channels)), due)
        .order_by(col(Outbox.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = await session.exec(
        update(Outbox)
        .where(col(Outbox.id).in_(ids.scalar_subquery()))
        .values(
            status=OutboxStatus.SENDING,
            claimed_until=now + lease,
            attempts=Outbox.attempts + 1,
            claimed_by=claimed_by,
            claimed_at=now,
            unsure_since=case(
                (
                    col(Outbox.status) == OutboxStatus.SENDING,
                    func.coalesce(Outbox.unsure_since, Outbox.claimed_at, Outbox.created_at),
                ),
                else_=Outbox.unsure_since,
            ),
        )
        .returning(Outbox)
        .execution_options(synchronize_session=False)
    )
    return sorted(claimed.scalars().all(), key=lambda row: row.id or 0)


async def waiting_outbox(
    session: AsyncSession, *, channel: str, recipients: Collection[str]
) -> dict[str, tuple[int, datetime]]:
    """For each recipient, its oldest row that waits for a retry (pending): (id, when it is due).
    A later message to the same citizen must not overtake it."""
    if not recipients:
        return {}
    rows = await session.exec(
        select(Outbox.recipient, func.min(Outbox.id))
        .where(
            Outbox.channel == channel,
            col(Outbox.recipient).in_(list(recipients)),
            Outbox.status == OutboxStatus.PENDING,
        )
        .group_by(col(Outbox.recipient))
    )
    oldest = {recipient: row_id for recipient, row_id in rows.all() if row_id is not None}
    if not oldest:
        return {}
    due = await session.exec(
        select(Outbox.id, Outbox.next_attempt_at).where(col(Outbox.id).in_(list(oldest.values())))
    )
    when = dict(due.all())
    return {recipient: (row_id, when[row_id]) for recipient, row_id in oldest.items()}


async def opted_out(session: AsyncSession, *, channel: str, addresses: Collection[str]) -> set[str]:
    """Which of these addresses on the channel said STOP (and not START since)."""
    if not addresses:
        return set()
    rows = await session.exec(
        select(Contact.address).where(
            Contact.channel == channel,
            col(Contact.address).in_(list(addresses)),
            col(Contact.opted_out_at).is_not(None),
        )
    )
    return set(rows.all())


async def record_delivery(
    session: AsyncSession,
    *,
    channel: str,
    status: str,
    at: datetime,
    idempotency_key: str | None = None,
    provider_message_id: str | None = None,
    error: str | None = None,
) -> tuple[Outbox | None, bool]:
    """Note a provider's delivery status on the outgoing row it names (by our key, else its id);
    returns the row and whether its status changed. Reports can arrive out of order or twice: an
    older one never overwrites a newer one."""
    if idempotency_key:
        query = select(Outbox).where(Outbox.idempotency_key == idempotency_key, Outbox.channel == channel)
    elif provider_message_id:
        query = select(Outbox).where(
            Outbox.provider_message_id == provider_message_id, Outbox.channel == channel
        )
    else:
        return None, False
    row = (await session.exec(query.with_for_update())).first()
    if row is None:
        return None, False
    if row.delivery_updated_at is not None and row.delivery_updated_at > at:
        return row, False
    if row.delivery_status in FINAL_DELIVERY_STATUSES and status not in FINAL_DELIVERY_STATUSES:
        return row, False  # a late "sent" after "delivered" (callbacks carry no time of their own)
    changed = row.delivery_status != status
    row.delivery_status, row.delivery_error, row.delivery_updated_at = status, error, at
    if provider_message_id and not row.provider_message_id:
        row.provider_message_id = provider_message_id
    session.add(row)
    return row, changed


async def get_outbox(session: AsyncSession, *, outbox_id: int) -> Outbox | None:
    return await session.get(Outbox, outbox_id)


async def next_outbox_time(session: AsyncSession, *, channels: Collection[str]) -> datetime | None:
    """When the earliest pending row of these channels falls due (None when there is none)."""
    return (
        await session.exec(
            select(func.min(Outbox.next_attempt_at)).where(
                col(Outbox.channel).in_(list(channels)), Outbox.status == OutboxStatus.PENDING
            )
        )
    ).first()


async def count_outbox(
    session: AsyncSession, *, status: str, channel: str | None = None, recipient: str | None = None
) -> int:
    query = select(func.count()).select_from(Outbox).where(Outbox.status == status)
    if channel is not None:
        query = query.where(Outbox.channel == channel)
    if recipient is not None:
        query = query.where(Outbox.recipient == recipient)
    return (await session.exec(query)).one()


async def renew_outbox(session: AsyncSession, *, outbox_id: int, attempt: int, until: datetime) -> bool:
    """Extend the lease of the claim made at `attempt`; False when the claim was lost meanwhile."""
    result = await session.exec(
        update(Outbox)
        .where(
            col(Outbox.id) == outbox_id,
            col(Outbox.status) == OutboxStatus.SENDING,
            col(Outbox.attempts) == attempt,
        )
        .values(claimed_until=until)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


async def release_claims(session: AsyncSession, *, claimed_by: str, now: datetime) -> int:
    """Make the rows this instance was sending when it stopped (it was killed) due at once, instead
    of when their lease runs out; whoever claims them next knows they may have been sent."""
    result = await session.exec(
        update(Outbox)
        .where(col(Outbox.status) == OutboxStatus.SENDING, col(Outbox.claimed_by) == claimed_by)
        .values(claimed_until=now - timedelta(seconds=1))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


async def finish_outbox(session: AsyncSession, *, outbox_id: int, attempt: int, **values: Any) -> bool:
    """Record the outcome of the claim made at `attempt`. False when the claim was lost meanwhile
    (its lease ran out and another sender took the row), so a late outcome cannot overwrite it. A
    final outcome (sent, failed) settles whether an earlier attempt was sent."""
    if values.get("status") in (OutboxStatus.SENT, OutboxStatus.FAILED):
        values.setdefault("unsure_since", None)
    result = await session.exec(
        update(Outbox)
        .where(
            col(Outbox.id) == outbox_id,
            col(Outbox.status) == OutboxStatus.SENDING,
            col(Outbox.attempts) == attempt,
        )
        .values(claimed_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)
