"""Labels and fitted thresholds of learning from staff."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import FaqFit, FaqLabel, TicketEvent


async def add_faq_label(session: AsyncSession, *, label: FaqLabel) -> FaqLabel:
    session.add(label)
    await session.flush()
    return label


async def faq_labels(
    session: AsyncSession, *, since: datetime | None = None, variants_only: bool = False
) -> Sequence[FaqLabel]:
    """The labels not forgotten, oldest first (only the learned variants not yet in the YAML files)."""
    query = select(FaqLabel).where(col(FaqLabel.forgotten_at).is_(None))
    if variants_only:
        query = query.where(col(FaqLabel.variant).is_(True), col(FaqLabel.folded_at).is_(None))
    if since is not None:
        query = query.where(col(FaqLabel.created_at) >= since)
    return (await session.exec(query.order_by(col(FaqLabel.id)))).all()


async def get_faq_label(session: AsyncSession, *, label_id: int) -> FaqLabel | None:
    return await session.get(FaqLabel, label_id)


async def faq_labels_of_ticket(session: AsyncSession, *, ticket_id: int) -> Sequence[FaqLabel]:
    query = select(FaqLabel).where(FaqLabel.ticket_id == ticket_id, col(FaqLabel.forgotten_at).is_(None))
    return (await session.exec(query)).all()


async def faq_labels_version(session: AsyncSession) -> tuple[int, int, int, int]:
    """Changes whenever a label is added, forgotten or folded, or a fit is stored (cheap to poll)."""
    newest, forgotten, folded = (
        await session.exec(
            select(
                func.max(FaqLabel.id),
                func.count(col(FaqLabel.forgotten_at)),
                func.count(col(FaqLabel.folded_at)),
            )
        )
    ).one()
    fit = (await session.exec(select(func.max(FaqFit.id)))).one()
    return newest or 0, forgotten, folded, fit or 0


async def add_faq_fit(session: AsyncSession, *, fit: FaqFit) -> FaqFit:
    session.add(fit)
    await session.flush()
    return fit


async def latest_faq_fit(session: AsyncSession) -> FaqFit | None:
    return (await session.exec(select(FaqFit).order_by(col(FaqFit.id).desc()).limit(1))).first()


async def answered_automatically(session: AsyncSession, *, ticket_id: int) -> bool:
    """True when the ticket's latest answer came from the bot (an FAQ answer), not from staff."""
    query = (
        select(TicketEvent.actor)
        .where(TicketEvent.ticket_id == ticket_id, TicketEvent.to_status == "answered")
        .order_by(col(TicketEvent.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first() == "bot"


async def mark_faq_labels(
    session: AsyncSession,
    *,
    label_ids: Collection[int],
    forgotten_at: datetime | None = None,
    folded_at: datetime | None = None,
) -> int:
    """Set when labels were forgotten or folded into the YAML files; how many there were."""
    values = {k: v for k, v in (("forgotten_at", forgotten_at), ("folded_at", folded_at)) if v is not None}
    if not label_ids or not values:
        return 0
    result = await session.exec(
        update(FaqLabel).where(col(FaqLabel.id).in_(list(label_ids))).values(**values)
    )
    return int(result.rowcount or 0)


async def count_faq_labels(session: AsyncSession) -> dict[str, int]:
    """Labels in use, by kind."""
    query = (
        select(FaqLabel.kind, func.count())
        .where(col(FaqLabel.forgotten_at).is_(None))
        .group_by(col(FaqLabel.kind))
    )
    return {kind: count for kind, count in (await session.exec(query)).all()}
