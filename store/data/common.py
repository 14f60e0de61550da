"""What every record kind uses: a row inserted in one statement, ids, times, the health check."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import insert, text
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import Contact, Message, Outbox, Ticket, TicketEvent

Row = TypeVar("Row", TicketEvent, Outbox, Message)


def id_of(row: Contact | Ticket | Message) -> int:
    """The id of a row that must be in the database already (flushed or loaded)."""
    if row.id is None:
        raise RuntimeError(f"{type(row).__name__} was not flushed")
    return row.id


async def insert_row(session: AsyncSession, row: Row) -> Row:
    """Insert `row` with one statement and set its id, without adding it to the session: far cheaper
    than a unit-of-work flush on the intake's hot path. For rows that nothing changes later in the
    same transaction (events, outbox rows, outgoing messages); the caller gets them detached."""
    table = type(row).__table__  # type: ignore[attr-defined]
    values = {column.key: getattr(row, column.key) for column in table.columns if column.key != "id"}
    statement = _INSERTS.get(table.name)
    if statement is None:  # one statement per table, built once: its compiled form is cached
        statement = _INSERTS[table.name] = insert(table).returning(table.c.id)
    connection = await session.connection()
    row.id = (await connection.execute(statement, values)).scalar_one()
    return row


_INSERTS: dict[str, Any] = {}


async def ping(session: AsyncSession) -> None:
    """One round trip to the database (the health check)."""
    await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
