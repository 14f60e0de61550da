"""Routing examples: what the department model learns from."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from datetime import datetime

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import RoutingExample, RoutingSource


def text_digest(text: str) -> str:
    """What identifies an example's text: the same words, whatever the spacing and case."""
    return hashlib.sha256(" ".join(text.casefold().split()).encode("utf-8")).hexdigest()


async def add_routing_examples(
    session: AsyncSession,
    *,
    examples: Sequence[RoutingExample],
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Add imported examples, except those whose text and department are there already (an import
    run twice adds nothing the second time); returns how many were added."""
    added = 0
    seen: set[tuple[str, str]] = set()
    for done, example in enumerate(examples, start=1):
        if progress is not None and (done % 100 == 0 or done == len(examples)):
            progress(done, len(examples))
        example.digest = example.digest or text_digest(example.text)
        key = (example.digest, example.department)
        if key in seen:
            continue
        seen.add(key)
        found = await session.exec(
            select(RoutingExample.id)
            .where(RoutingExample.digest == example.digest, RoutingExample.department == example.department)
            .limit(1)
        )
        if found.first() is not None:
            continue
        session.add(example)
        added += 1
    await session.flush()
    return added


async def set_ticket_example(
    session: AsyncSession, *, ticket_id: int, text: str, department: str, at: datetime
) -> RoutingExample:
    """The ticket's example: its text and the department that resolved it (replacing an earlier one,
    so the example is new and a retraining notices it)."""
    await remove_ticket_example(session, ticket_id=ticket_id)
    example = RoutingExample(
        text=text,
        department=department,
        source=RoutingSource.TICKET,
        ticket_id=ticket_id,
        digest=text_digest(text),
        created_at=at,
    )
    session.add(example)
    await session.flush()
    return example


async def remove_ticket_example(session: AsyncSession, *, ticket_id: int) -> None:
    await session.exec(delete(RoutingExample).where(col(RoutingExample.ticket_id) == ticket_id))


async def routing_examples(
    session: AsyncSession, *, departments: Collection[str] | None = None
) -> Sequence[RoutingExample]:
    """Every example (of these departments), oldest first."""
    query = select(RoutingExample)
    if departments is not None:
        query = query.where(col(RoutingExample.department).in_(list(departments)))
    return (await session.exec(query.order_by(col(RoutingExample.id)))).all()


async def routing_examples_version(session: AsyncSession) -> tuple[int, int]:
    """(how many examples, the newest id): changes whenever an example is added, replaced or removed."""
    count, newest = (
        await session.exec(select(func.count(col(RoutingExample.id)), func.max(RoutingExample.id)))
    ).one()
    return int(count or 0), int(newest or 0)


async def count_routing_examples(session: AsyncSession) -> dict[tuple[str, str], int]:
    """How many examples each (department, source) has."""
    rows = await session.exec(
        select(RoutingExample.department, RoutingExample.source, func.count()).group_by(
            col(RoutingExample.department), col(RoutingExample.source)
        )
    )
    return {(department, source): int(n) for department, source, n in rows.all()}
