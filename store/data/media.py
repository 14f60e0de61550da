"""Citizens' photos: queued for copying into the store, claimed, finished."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import Media, MediaStatus


async def add_media(session: AsyncSession, *, media: Media) -> Media:
    session.add(media)
    await session.flush()
    return media


async def claim_media(
    session: AsyncSession, *, channels: Collection[str], now: datetime, lease: timedelta, limit: int
) -> list[Media]:
    """Claim media due for fetching (pending, or claimed by a fetcher whose lease ran out)."""
    ids = (
        select(Media.id)
        .where(
            col(Media.channel).in_(list(channels)),
            col(Media.status) == MediaStatus.PENDING,
            col(Media.next_attempt_at) <= now,
            or_(col(Media.claimed_until).is_(None), col(Media.claimed_until) < now),
        )
        .order_by(col(Media.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = await session.exec(
        update(Media)
        .where(col(Media.id).in_(ids.scalar_subquery()))
        .values(claimed_until=now + lease, attempts=Media.attempts + 1)
        .returning(Media)
        .execution_options(synchronize_session=False)
    )
    return sorted(claimed.scalars().all(), key=lambda m: m.id or 0)


async def finish_media(session: AsyncSession, *, media_id: int, attempt: int, **values: Any) -> bool:
    """Record a fetch's outcome, unless its claim was lost meanwhile (see `finish_outbox`)."""
    result = await session.exec(
        update(Media)
        .where(col(Media.id) == media_id, col(Media.attempts) == attempt)
        .values(claimed_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


async def get_media(session: AsyncSession, *, media_id: int) -> Media | None:
    return await session.get(Media, media_id)


async def message_media(session: AsyncSession, *, message_id: int) -> Sequence[Media]:
    return (
        await session.exec(select(Media).where(Media.message_id == message_id).order_by(col(Media.id)))
    ).all()


async def next_media_time(session: AsyncSession, *, channels: Collection[str]) -> datetime | None:
    return (
        await session.exec(
            select(func.min(Media.next_attempt_at)).where(
                col(Media.channel).in_(list(channels)), Media.status == MediaStatus.PENDING
            )
        )
    ).first()
