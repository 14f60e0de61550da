"""What a channel remembers across restarts (a poller's position, where the desk's cards are)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import ChannelCursor


async def recall(session: AsyncSession, *, channel: str, name: str) -> str | None:
    row = await session.get(ChannelCursor, (channel, name))
    return row.value if row else None


async def remember(session: AsyncSession, *, channel: str, name: str, value: str, at: datetime) -> None:
    row = await session.get(ChannelCursor, (channel, name))
    if row is None:
        session.add(ChannelCursor(channel=channel, name=name, value=value, updated_at=at))
    else:
        row.value, row.updated_at = value, at
        session.add(row)
    await session.flush()
