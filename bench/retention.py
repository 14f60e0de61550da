"""The retention purge on a store of real size: how long the first purge of a city's backlog takes.

    .venv/bin/python bench/retention.py [--tickets 20000] [--batch 200] [--database-url URL] [--json FILE]

Fills a fresh SQLite file (or a fresh schema of the PostgreSQL at `--database-url`) with `--tickets`
tickets closed four years ago, each from its own contact with what a ticket usually holds (two
citizen messages and two replies, their four delivered outbox rows, a desk card, five events, a
routing example), plus as many recent tickets that must be left alone. Then purges as the server does
(batches of `--batch` tickets, one transaction each) and reports tickets a second. Exit status 1 if
anything personal is left in the old tickets or anything of the recent ones was touched.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from store import (  # noqa: E402
    Contact,
    Database,
    Message,
    Outbox,
    RoutingExample,
    StoreConfig,
    Ticket,
    TicketEvent,
    open_database,
    retention,
)

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
RETENTION = timedelta(days=1095)
CHUNK = 2000  # rows per INSERT


async def fill(db: Database, tickets: int) -> None:
    """`tickets` old closed tickets and as many recent ones, inserted in bulk."""
    old, recent = NOW - timedelta(days=1460), NOW - timedelta(days=10)
    for start in range(0, 2 * tickets, CHUNK):
        numbers = range(start, min(start + CHUNK, 2 * tickets))
        async with db.transaction() as s:
            connection = await s.connection()

            def at(n: int) -> datetime:
                return old if n < tickets else recent

            await connection.execute(
                insert(Contact),
                (
                    [
                        {"id": n + 1, "channel": "sms", "address": f"+8210{n:08d}", "created_at": at(n)}
                        for n in numbers
                    ]
                ),
            )
            await connection.execute(
                insert(Ticket),
                (
                    [
                        {
                            "id": n + 1,
                            "reference": f"2022-{n:06d}",
                            "contact_id": n + 1,
                            "channel": "sms",
                            "language": "ko",
                            "department": "environment",
                            "status": "closed",
                            "priority": 0,
                            "sensitive": False,
                            "escalations": 0,
                            "rating": 4,
                            "rating_comment": "고맙습니다 010-1234-5678",
                            "created_at": at(n),
                            "updated_at": at(n),
                            "closed_at": at(n) + timedelta(days=3),
                        }
                        for n in numbers
                    ]
                ),
            )
            messages: list[dict[str, Any]] = [
                {
                    "id": 4 * n + k + 1,
                    "ticket_id": n + 1,
                    "contact_id": n + 1,
                    "direction": "in" if k % 2 == 0 else "out",
                    "channel": "sms",
                    "provider_message_id": f"SM{n:08d}{k}" if k % 2 == 0 else None,
                    "author": "citizen" if k % 2 == 0 else "staff:U1",
                    "author_name": "김민수" if k % 2 == 0 else "Park",
                    "text": "세종대로 12 앞에 쓰레기가 버려져 있어요. 연락처 010-1234-5678",
                    "attachments": [],
                    "buttons": [],
                    "raw": {"From": f"+8210{n:08d}"},
                    "created_at": at(n),
                }
                for n in numbers
                for k in range(4)
            ]
            await connection.execute(insert(Message), (messages))
            outbox = [
                {
                    "idempotency_key": f"o-{n}-{k}",
                    "ticket_id": n + 1,
                    "message_id": 4 * n + k + 1 if k < 4 else None,
                    "channel": "sms" if k < 4 else "slack",
                    "recipient": f"+8210{n:08d}" if k < 4 else "#dept-environment",
                    "payload": {"text": "세종대로 12 앞에 쓰레기가 버려져 있어요."},
                    "status": "sent",
                    "attempts": 1,
                    "next_attempt_at": at(n),
                    "created_at": at(n),
                }
                for n in numbers
                for k in range(5)
            ]
            await connection.execute(insert(Outbox), (outbox))
            events = [
                {
                    "ticket_id": n + 1,
                    "at": at(n),
                    "actor": "staff:U1" if k == 2 else "citizen",
                    "actor_name": "Park" if k == 2 else "김민수",
                    "kind": ("created", "status", "reply", "status", "rated")[k],
                    "detail": {"text": "김민수님, 치웠습니다."} if k == 2 else {"department": "environment"},
                }
                for n in numbers
                for k in range(5)
            ]
            await connection.execute(insert(TicketEvent), (events))
            await connection.execute(
                insert(RoutingExample),
                (
                    [
                        {
                            "text": "세종대로 12 앞에 쓰레기가 버려져 있어요.",
                            "department": "environment",
                            "source": "ticket",
                            "ticket_id": n + 1,
                            "digest": f"{n:064d}",
                            "created_at": at(n),
                        }
                        for n in numbers
                    ]
                ),
            )


async def purge(db: Database, batch: int) -> tuple[retention.Purged, float, float]:
    """The whole purge as the server runs it; the first batch of tickets is timed on its own too
    (on SQLite, how long an intake may wait behind the purge)."""
    before = NOW - RETENTION
    started = time.perf_counter()
    async with db.transaction() as s:
        first = await retention.purge_tickets_and_messages(s, before=before, now=NOW, limit=batch)
    one_batch = time.perf_counter() - started
    rest = await retention.purge_expired(db, before=before, now=NOW, batch=batch)
    return first + rest, time.perf_counter() - started, one_batch


async def leftovers(db: Database, tickets: int) -> dict[str, int]:
    """Personal data left in the old tickets, and recent rows the purge changed (all should be 0)."""
    old = col(Message.ticket_id) <= tickets
    async with db.session() as s:

        async def count(query: Any) -> int:
            return int((await s.exec(query)).one())

        return {
            "old_message_texts": await count(select(func.count()).where(old, Message.text != "")),
            "old_addresses": await count(
                select(func.count()).where(col(Contact.id) <= tickets, col(Contact.purged_at).is_(None))
            ),
            "old_outbox_recipients": await count(
                select(func.count()).where(col(Outbox.ticket_id) <= tickets, Outbox.recipient != "")
            ),
            "old_routing_examples": await count(
                select(func.count()).where(col(RoutingExample.ticket_id) <= tickets)
            ),
            "recent_purged_tickets": await count(
                select(func.count()).where(col(Ticket.id) > tickets, col(Ticket.purged_at).is_not(None))
            ),
            "recent_purged_messages": await count(
                select(func.count()).where(col(Message.ticket_id) > tickets, Message.text == "")
            ),
        }


async def _admin(url: str, statement: str) -> None:
    admin = open_database(StoreConfig(url=url))
    async with admin.engine.begin() as connection:
        await connection.execute(text(statement))
    await admin.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    schema = None
    with tempfile.TemporaryDirectory() as temp:
        if args.database_url:
            schema = f"bench_retention_{secrets.token_hex(4)}"
            await _admin(args.database_url, f"CREATE SCHEMA {schema}")
            engine = create_async_engine(
                args.database_url, connect_args={"server_settings": {"search_path": schema}}
            )
            db = Database(engine)
        else:
            db = open_database(StoreConfig(url=f"sqlite+aiosqlite:///{Path(temp) / 'retention.db'}"))
        try:
            await db.upgrade()
            started = time.perf_counter()
            await fill(db, args.tickets)
            filled = time.perf_counter() - started
            async with db.engine.begin() as connection:  # as autovacuum would have, long since
                await connection.execute(text("ANALYZE"))
            purged, seconds, one_batch = await purge(db, args.batch)
            left = await leftovers(db, args.tickets)
        finally:
            await db.close()
            if schema:
                await _admin(args.database_url, f"DROP SCHEMA {schema} CASCADE")
    return {
        "database": db.dialect,
        "tickets_old": args.tickets,
        "tickets_recent": args.tickets,
        "fill_seconds": round(filled, 1),
        "purged": dataclasses.asdict(purged),
        "purge_seconds": round(seconds, 2),
        "tickets_per_second": round(purged.tickets / seconds, 1) if seconds else None,
        "batch": args.batch,
        "one_batch_ms": round(one_batch * 1000, 1),
        "left": left,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--database-url", help="a PostgreSQL URL (postgresql+asyncpg://...); default SQLite")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = asyncio.run(run(args))
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = {"tickets": args.tickets, "messages": 4 * args.tickets, "contacts": args.tickets}
    return 0 if report["purged"] == expected and not any(report["left"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
