"""Group commit: units of work share a transaction, each undone alone when it fails."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from store import Database
from store.group import GroupCommit


async def _make_table(database: Database) -> None:
    serial = "SERIAL" if database.dialect == "postgresql" else "INTEGER"
    async with database.transaction() as s:
        await s.exec(text(f"CREATE TABLE note (id {serial} PRIMARY KEY, body TEXT UNIQUE)"))  # type: ignore[call-overload]


def _insert(body: str, *, fail: bool = False):  # type: ignore[no-untyped-def]
    async def work(session: AsyncSession) -> str:
        await session.exec(text("INSERT INTO note (body) VALUES (:b)").bindparams(b=body))  # type: ignore[call-overload]
        if fail:
            raise ValueError(f"{body} failed")
        return body

    return work


async def _bodies(database: Database) -> list[str]:
    async with database.session() as s:
        rows = await s.exec(text("SELECT body FROM note ORDER BY id"))  # type: ignore[call-overload]
        return [row[0] for row in rows.all()]


async def test_units_that_arrive_together_share_one_transaction_in_order(database: Database) -> None:
    await _make_table(database)
    group = GroupCommit(database)
    results = await asyncio.gather(*(group.run(_insert(f"n{n}"), key="citizen") for n in range(30)))
    assert results == [f"n{n}" for n in range(30)]
    assert await _bodies(database) == [f"n{n}" for n in range(30)]
    assert group.units == 30 and group.batches < 30  # the first alone, the others gathered behind it


async def test_a_failing_unit_is_undone_alone_and_its_neighbours_commit(database: Database) -> None:
    await _make_table(database)
    group = GroupCommit(database)
    outcomes = await asyncio.gather(
        group.run(_insert("a")),
        group.run(_insert("b", fail=True)),
        group.run(_insert("a")),  # the unique body: an IntegrityError for this unit only
        group.run(_insert("c")),
        return_exceptions=True,
    )
    assert outcomes[0] == "a" and outcomes[3] == "c"
    assert isinstance(outcomes[1], ValueError)
    assert isinstance(outcomes[2], IntegrityError)
    assert await _bodies(database) == ["a", "c"]


async def test_when_the_commit_fails_every_unit_of_the_batch_hears_it(database: Database) -> None:
    await _make_table(database)
    group = GroupCommit(database)

    async def breaks_the_transaction(session: AsyncSession) -> None:
        raise asyncio.CancelledError  # not an Exception: the whole batch ends

    with pytest.raises(asyncio.CancelledError):
        await asyncio.gather(group.run(_insert("x")), group.run(breaks_the_transaction))
    await asyncio.sleep(0)
    assert await _bodies(database) == []
    # The group goes on working afterwards.
    assert await group.run(_insert("y")) == "y"
