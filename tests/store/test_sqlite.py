"""SQLite statements run on the event loop's thread unless they may wait for a lock or the disk."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import text

from store import StoreConfig
from store.db import open_database
from store.sqlite import InlineConnection


async def test_reads_and_writes_under_the_write_lock_run_inline(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    db = open_database(StoreConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"))
    on_thread: list[str] = []
    handed = InlineConnection.__mro__[1]._execute  # aiosqlite's own: the trip to its thread

    async def counting(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        on_thread.append(threading.current_thread().name)
        return await handed(self, fn, *args, **kwargs)

    try:
        async with db.transaction() as s:
            await s.exec(text("CREATE TABLE t (x INTEGER)"))  # type: ignore[call-overload]
        monkeypatch.setattr(InlineConnection.__mro__[1], "_execute", counting)
        async with db.transaction() as s:
            for n in range(20):
                await s.exec(text("INSERT INTO t VALUES (:n)").bindparams(n=n))  # type: ignore[call-overload]
        writes = len(on_thread)
        async with db.session() as s:
            for _ in range(20):
                assert (await s.exec(text("SELECT count(*) FROM t"))).one()[0] == 20  # type: ignore[call-overload]
        assert writes == 2  # BEGIN IMMEDIATE and the COMMIT; the 20 inserts ran inline
        assert len(on_thread) == writes  # and every read too
    finally:
        await db.close()


async def test_another_process_holding_the_write_lock_does_not_stall_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    db = open_database(StoreConfig(url=f"sqlite+aiosqlite:///{path}"))
    try:
        async with db.transaction() as s:
            await s.exec(text("CREATE TABLE t (x INTEGER)"))  # type: ignore[call-overload]
        other = sqlite3.connect(path, isolation_level=None)  # the CLI, say, in the middle of a write
        other.execute("BEGIN IMMEDIATE")

        async def write() -> None:
            async with db.transaction() as s:
                await s.exec(text("INSERT INTO t VALUES (1)"))  # type: ignore[call-overload]

        writer = asyncio.create_task(write())
        ticks, started = 0, time.monotonic()
        while time.monotonic() - started < 0.5:  # the loop keeps turning while the writer waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not writer.done() and ticks >= 25
        other.execute("COMMIT")
        other.close()
        await asyncio.wait_for(writer, 10)
        async with db.session() as s:
            assert (await s.exec(text("SELECT count(*) FROM t"))).one()[0] == 1  # type: ignore[call-overload]
    finally:
        await db.close()
