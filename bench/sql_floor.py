"""The floor of an intake's SQL on SQLite: its statements through `sqlite3` directly, no SQLAlchemy.

    .venv/bin/python bench/sql_floor.py [--intakes 2000]

On a fresh migrated SQLite file (WAL, synchronous=NORMAL, as the bot opens it), one transaction
runs the statements of as many FAQ-answered intakes: look up the provider's id, upsert the
contact, store the message, read the contact's latest ticket, take a reference, store the ticket,
two events, the reply and its outbox row, then update the ticket and the message, each intake in a
savepoint. Printed: microseconds an intake, next to what one takes through the bot (see
bench/README.md, "Results: group commit"). No network, no matching: the SQL alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from bench/: the project's packages live one level up

from store import StoreConfig  # noqa: E402
from store.db import open_database  # noqa: E402

NOW = "2026-12-05 00:00:00.000000"


async def migrate(path: Path) -> None:
    db = open_database(StoreConfig(url=f"sqlite+aiosqlite:///{path}"))
    await db.upgrade()
    await db.close()


def intake(c: sqlite3.Connection, n: int) -> None:
    c.execute("SAVEPOINT intake")
    c.execute(
        "SELECT id, ticket_id FROM message WHERE channel = ? AND provider_message_id = ?", ("sms", f"p{n}")
    )
    contact = c.execute(
        "INSERT INTO contact (channel, address, created_at) VALUES (?, ?, ?) ON CONFLICT (channel, address)"
        " DO UPDATE SET address = excluded.address RETURNING id",
        ("sms", f"+8210{n % 100:08d}", NOW),
    ).fetchone()[0]
    inbound = c.execute(
        "INSERT INTO message (contact_id, direction, channel, provider_message_id, author, text,"
        " attachments, buttons, language, created_at)"
        " VALUES (?, 'in', 'sms', ?, 'citizen', ?, '[]', '[]', 'ko', ?) RETURNING id",
        (contact, f"p{n}", "소파 버리는 방법", NOW),
    ).fetchone()[0]
    c.execute("SELECT * FROM ticket WHERE contact_id = ? ORDER BY id DESC LIMIT 1", (contact,)).fetchone()
    last = c.execute(
        "INSERT INTO ticketcounter (year, last) VALUES (2026, 1)"
        " ON CONFLICT (year) DO UPDATE SET last = ticketcounter.last + 1 RETURNING last"
    ).fetchone()[0]
    ticket = c.execute(
        "INSERT INTO ticket (reference, contact_id, channel, language, department, status, priority,"
        " sensitive, created_at, updated_at, escalations)"
        " VALUES (?, ?, 'sms', 'ko', 'environment', 'new', 'normal', 0, ?, ?, 0) RETURNING id",
        (f"2026-{last:06d}", contact, NOW, NOW),
    ).fetchone()[0]
    for kind in ("created", "status"):
        c.execute(
            "INSERT INTO ticketevent (ticket_id, actor, kind, detail, at) VALUES (?, 'bot', ?, ?, ?)",
            (ticket, kind, json.dumps({"entry": "bulky-waste", "score": 0.99}), NOW),
        )
    reply = c.execute(
        "INSERT INTO message (ticket_id, contact_id, direction, channel, author, text, attachments, buttons,"
        " language, created_at) VALUES (?, ?, 'out', 'sms', 'bot', ?, '[]', '[]', 'ko', ?) RETURNING id",
        (
            ticket,
            contact,
            "대형 폐기물은 구청 누리집이나 주민센터에서 배출 신고 후 스티커를 붙여 내놓으세요.",
            NOW,
        ),
    ).fetchone()[0]
    c.execute(
        "INSERT INTO outbox (idempotency_key, ticket_id, message_id, channel, recipient, payload, status,"
        " attempts, next_attempt_at, created_at) VALUES (?, ?, ?, 'sms', ?, ?, 'pending', 0, ?, ?)",
        (f"msg-{reply}", ticket, reply, f"+8210{n % 100:08d}", json.dumps({"text": "..."}), NOW, NOW),
    )
    c.execute("UPDATE ticket SET status = 'answered', faq_entry = 'bulky-waste' WHERE id = ?", (ticket,))
    c.execute("UPDATE message SET ticket_id = ? WHERE id = ?", (ticket, inbound))
    c.execute("RELEASE intake")


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--intakes", type=int, default=2000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="sql-floor-") as tmp:
        path = Path(tmp) / "floor.db"
        asyncio.run(migrate(path))
        c = sqlite3.connect(path, isolation_level=None)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=NORMAL")
        started = time.perf_counter()
        c.execute("BEGIN IMMEDIATE")
        for n in range(args.intakes):
            intake(c, n)
        c.execute("COMMIT")
        took = time.perf_counter() - started
        c.close()
    each = took / args.intakes * 1e6
    print(f"{args.intakes} intakes: {each:.0f} us each through sqlite3 (14 statements and a savepoint)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
