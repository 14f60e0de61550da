"""A fresh store for one benchmark run."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from store import Database, StoreConfig


@contextlib.asynccontextmanager
async def fresh_store(url: str, config: StoreConfig) -> AsyncIterator[Database | None]:
    """PostgreSQL: a fresh schema, dropped at the end (as tests/conftest.py does). Otherwise None:
    build() opens the URL itself (the SQLite file lives in a temp dir that is removed)."""
    if make_url(url).get_backend_name() != "postgresql":
        yield None
        return
    schema, admin = f"bench_{secrets.token_hex(6)}", create_async_engine(url)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    await admin.dispose()  # no idle admin connection during the run; the engine reconnects to drop
    pinned = {"server_settings": {"search_path": schema}}  # the pool open_database makes, in the schema
    db = Database(
        create_async_engine(url, pool_size=config.pool_size, pool_pre_ping=True, connect_args=pinned)
    )
    try:
        yield db
    finally:
        await db.close()
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@contextlib.asynccontextmanager
async def fresh_database(url: str) -> AsyncIterator[str]:
    """PostgreSQL: a fresh database beside the one in `url`, migrated; yields its URL and drops it
    at the end. For servers in other processes, which cannot be handed a schema as the in-process
    bot is."""
    name = f"bench_{secrets.token_hex(6)}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    fresh = make_url(url).set(database=name).render_as_string(hide_password=False)
    db = Database(create_async_engine(fresh))
    try:
        await db.upgrade()
        await db.close()
        yield fresh
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()
