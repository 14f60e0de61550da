"""SQLite connections for the async engine that run most statements on the event loop's thread.

aiosqlite hands every call (each statement, each fetch) to a thread of its own and back: about
half a millisecond a call here, against a few microseconds for the statement itself, so an intake
of a dozen statements spent most of its time crossing threads. A statement only needs the thread
when it can *wait*: for another process's write lock (busy_timeout) or for the disk. Everything
else (reads, which never wait in WAL mode, and writes inside a transaction that already holds the
write lock) runs inline.

On the thread, as before: BEGIN IMMEDIATE (it takes the write lock), the COMMIT of writes (a
checkpoint may write the database file), PRAGMAs and any write outside an IMMEDIATE transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import URL

_INLINE_CALLS = frozenset({"fetchone", "fetchmany", "fetchall", "close", "cursor"})  # a cursor's close
# BEGIN alone is deferred: it takes no lock. (Not WITH: a common table expression may lead to a write.)
_READS = ("SELECT", "BEGIN")


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection that calls the sqlite3 connection directly unless the call may wait."""

    _holds_write_lock = False
    # Set once the last call handed to the thread has finished there. A call whose waiter was
    # cancelled (a timeout, a shutdown) may still be running: until then every call queues behind it
    # on the thread, so the sqlite3 connection is never used from two threads at once.
    _thread_idle: threading.Event | None = None

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        if self._may_wait(fn, args) or (self._thread_idle is not None and not self._thread_idle.is_set()):
            idle = self._thread_idle = threading.Event()

            def on_thread() -> Any:
                try:
                    return fn(*args, **kwargs)
                finally:
                    idle.set()

            result = await super()._execute(on_thread)  # type: ignore[no-untyped-call]
        else:
            result = fn(*args, **kwargs)
        name = getattr(fn, "__name__", "")
        if name in ("execute", "executemany"):
            self._holds_write_lock = self._connection.in_transaction and (
                self._holds_write_lock or _statement(fn, args).startswith("BEGIN IMMEDIATE")
            )
        elif _of_connection(self, fn, "commit", "rollback", "close"):
            self._holds_write_lock = False
        return result

    def _may_wait(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> bool:
        name = getattr(fn, "__name__", "")
        if _of_connection(self, fn, "close"):
            return True  # as aiosqlite does: after whatever the thread still has
        if name in _INLINE_CALLS:
            return False
        if name in ("commit", "rollback"):
            # Ending a read never waits; a rollback only drops what was written; a COMMIT of
            # writes may run a checkpoint (file writes and an fsync).
            return name == "commit" and self._holds_write_lock
        if name not in ("execute", "executemany"):
            return True  # the connector, anything else
        statement = _statement(fn, args)
        if statement.startswith(("COMMIT", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE", "PRAGMA")):
            return True
        return not (self._holds_write_lock or statement.startswith(_READS))


def _of_connection(connection: InlineConnection, fn: Callable[..., Any], *names: str) -> bool:
    """Whether `fn` is one of these methods of the sqlite3 connection itself (not of a cursor)."""
    return getattr(fn, "__name__", "") in names and getattr(fn, "__self__", None) is connection._connection


def _statement(fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
    if getattr(fn, "__name__", "") not in ("execute", "executemany") or not args:
        return ""
    return str(args[0]).lstrip()[:16].upper()


def inline_creator(url: URL) -> Callable[[], Any]:
    """The `async_creator` for `create_async_engine`: connects as the aiosqlite dialect would
    (same arguments from the URL), but with an `InlineConnection`."""
    cargs, cparams = SQLiteDialect_aiosqlite().create_connect_args(url)
    # Made on aiosqlite's thread and used on both, never at once (see `_thread_idle`).
    cparams = {**cparams, "check_same_thread": False}

    async def connect() -> InlineConnection:
        connection = InlineConnection(partial(sqlite3.connect, *cargs, **cparams), iter_chunk_size=64)
        connection._thread.daemon = True  # as SQLAlchemy does: never hold the interpreter's exit
        await connection  # starts aiosqlite's thread and connects there
        return connection

    return connect
