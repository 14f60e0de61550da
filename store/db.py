"""Engine, sessions and migrations.

SQLite is the embedded default (WAL, one writer at a time, same host); PostgreSQL is the store for
several instances. Nothing here is created at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from store.config import StoreConfig
from store.sqlite import inline_creator

log = logging.getLogger("store")

# The unit of work that data functions take. Other packages name it through `store`, never through
# SQLAlchemy: what the session is made of stays the store's business.
Session = AsyncSession

MIGRATIONS = Path(__file__).parent / "migrations"
_WRITE = "intake_sqlite_write"  # execution option: this connection's transaction will write
# Any constant will do: it only has to be the same for every instance that migrates this database.
_MIGRATION_LOCK_KEY = 120_120_001


class Database:
    """An engine and the sessions made from it. One `AsyncSession` per unit of work, never shared."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        # SQLite has one writer at a time. Writers of this process queue here, first come first
        # served, instead of sleeping and retrying in SQLite's busy handler, where a steady stream
        # of intakes starves the dispatcher. Other processes (the CLI) still meet busy_timeout.
        self._sqlite_writer: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None
        self._leading: dict[str, AsyncConnection] = {}  # job -> the connection holding its lock

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> AsyncSession:
        return self._sessions()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one write transaction: committed when the block ends, rolled back on
        error. (`session()` is for reading.)"""
        if self._sqlite_writer is None:
            async with self._sessions() as session, session.begin():
                yield session
            return
        async with self._sqlite_writer, self._sessions() as session, session.begin():
            await session.connection(execution_options={_WRITE: True})
            yield session

    async def upgrade(self) -> None:
        """Apply every pending migration (instances that start together take turns)."""
        async with self.engine.begin() as connection:
            if self.dialect == "postgresql":
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            await connection.run_sync(_run_alembic, "upgrade")

    async def lead(self, job: str) -> bool:
        """Whether this process runs `job` (a poller, a rate-limited sender) among all instances on
        this database. On PostgreSQL the first to ask holds a session advisory lock on a connection
        of its own until it closes (or the connection dies, when another instance takes over); on
        SQLite, which serves one host, every caller leads."""
        if self.dialect != "postgresql":
            return True
        held = self._leading.get(job)
        if held is not None:
            try:
                await held.execute(text("SELECT 1"))
                return True
            except Exception:  # the connection died and the lock with it: ask again below
                log.warning("store: lost the lead of %s; asking again", job)
                self._leading.pop(job, None)
                with contextlib.suppress(Exception):
                    await held.close()
        connection = await self.engine.connect()
        try:
            # Autocommit: the lock belongs to the session, and no transaction stays open meanwhile.
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            # Keyed by schema and job: two cities in one database (a schema each) never block each other.
            got = (
                await connection.execute(
                    text("SELECT pg_try_advisory_lock(hashtext(current_schema()), hashtext(:job))"),
                    {"job": job},
                )
            ).scalar()
        except BaseException:
            await connection.close()
            raise
        if not got:
            await connection.close()
            return False
        self._leading[job] = connection
        return True

    @staticmethod
    def head_revision() -> str | None:
        """The newest migration this code ships (what `upgrade` brings a database to)."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(alembic_config()).get_current_head()

    async def current_revision(self) -> str | None:
        async with self.engine.connect() as connection:
            return await connection.run_sync(_current_revision)

    async def close(self) -> None:
        for connection in self._leading.values():  # closing a session releases its advisory locks
            with contextlib.suppress(Exception):
                await connection.close()
        self._leading.clear()
        await self.engine.dispose()


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _run_alembic(connection: Connection, action: str) -> None:
    if action == "upgrade":
        command.upgrade(alembic_config(connection), "head")


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def open_database(config: StoreConfig, *, base_dir: Path | None = None) -> Database:
    """Build the engine for `config.url`. A relative SQLite path is taken from `base_dir` (or the
    working directory) and its folder is created, so the embedded default needs no setup."""
    url = make_url(config.url)
    options: dict[str, Any] = {"echo": config.echo}
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)
            if not path.is_absolute():
                path = (base_dir or Path.cwd()) / path
            path.parent.mkdir(parents=True, exist_ok=True)
            url = url.set(database=str(path))
        engine = create_async_engine(url, async_creator=inline_creator(url), **options)
        _tune_sqlite(engine)
    else:
        options["pool_size"] = config.pool_size
        options["pool_pre_ping"] = True
        engine = create_async_engine(url, **options)
    return Database(engine)


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (below) instead of the driver's lazy deferred BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "busy_timeout=10000", "synchronous=NORMAL", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A writer takes the lock up front (IMMEDIATE), so writers of two processes queue on
        # busy_timeout instead of one failing when it upgrades a read lock mid-transaction.
        # Readers begin deferred and never hold the write lock.
        writes = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")
