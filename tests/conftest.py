"""Shared fixtures: databases (SQLite always, PostgreSQL when reachable or required), and a whole
bot on the in-memory channel."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import col, select

import bot as bot_module
from channels.memory import MemoryChannel
from server.config import BotConfig, load_config
from store import Database, Outbox, OutboxStatus, StoreConfig, open_database

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("INTAKE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("INTAKE_REQUIRE_POSTGRES") == "1"


async def _postgres_reachable() -> str | None:
    url = make_url(POSTGRES_URL)
    try:
        connection = await asyncpg.connect(
            host=url.host, port=url.port or 5432, user=url.username, database=url.database, timeout=3
        )
    except (OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await connection.close()
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty database: SQLite in a temp folder, or a fresh schema on PostgreSQL."""
    if request.param == "sqlite":
        db = open_database(StoreConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"))
        await db.upgrade()
        yield db
        await db.close()
        return
    problem = await _postgres_reachable()
    if problem:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required (INTAKE_REQUIRE_POSTGRES=1) but not reachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {problem}")
    yield_db = await _postgres_schema_db()
    try:
        yield yield_db[0]
    finally:
        await yield_db[0].close()
        await _drop_schema(yield_db[1])


async def _postgres_schema_db() -> tuple[Database, str]:
    schema = f"t_{secrets.token_hex(6)}"
    admin = open_database(StoreConfig(url=POSTGRES_URL))
    async with admin.engine.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    await admin.close()
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}})
    db = Database(engine)
    await db.upgrade()
    return db, schema


async def _drop_schema(schema: str) -> None:
    admin = open_database(StoreConfig(url=POSTGRES_URL))
    async with admin.engine.begin() as connection:
        await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await admin.close()


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # a Monday, 10:00 in Seoul

    def __call__(self) -> datetime:
        return self.now


def shipped_config(tmp_path: Path, **store: str) -> BotConfig:
    """The shipped config.yaml on a fresh SQLite database in `tmp_path`, its monthly reports written
    there too (a test whose clock passes a month's first working day posts one)."""
    config = load_config(ROOT / "config.yaml")
    url = store.get("url", f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")
    report = config.router.report.model_copy(update={"folder": tmp_path / "reports"})
    router = config.router.model_copy(update={"report": report})
    return config.model_copy(update={"store": StoreConfig(url=url), "router": router})


@pytest.fixture
async def whole_bot(tmp_path: Path) -> AsyncIterator[tuple[bot_module.Bot, MemoryChannel]]:
    """The shipped city on SQLite with the in-memory channel: push a message in, pop replies out."""
    memory = MemoryChannel()
    bot = await bot_module.build(shipped_config(tmp_path), base_dir=ROOT, channels=[memory], webchat=False)
    async with bot.running():
        yield bot, memory


FAQ_MIN = ROOT / "tests" / "data" / "faq_min"


def config_for_tests(tmp_path: Path, *, faq: Path = FAQ_MIN) -> BotConfig:
    """The shipped config with the tests' small FAQ and quick retries."""
    config = shipped_config(tmp_path)
    knowledge = config.knowledge.model_copy(update={"path": faq, "reload_seconds": 0})
    dispatcher = config.router.dispatcher.model_copy(
        update={"poll_seconds": 0.05, "backoff_seconds": 0.01, "backoff_max_seconds": 0.05, "max_attempts": 3}
    )
    media = config.router.media.model_copy(
        update={"poll_seconds": 0.05, "backoff_seconds": 0.01, "backoff_max_seconds": 0.05}
    )
    router = config.router.model_copy(update={"dispatcher": dispatcher, "media": media})
    return config.model_copy(update={"knowledge": knowledge, "router": router})


def with_channels(
    config: BotConfig,
    *,
    public_url: str = "https://city.example",
    patient: bool = False,
    **sections: BaseModel,
) -> BotConfig:
    """`config` with provider sections replaced (e.g. sms=SmsConfig(enabled=True, ...)) and the public
    URL providers sign against. `patient`: transient failures are retried for as long as the test
    runs (outage tests), instead of giving up after three quick attempts."""
    channels = config.channels.model_copy(update=sections)
    server = config.server.model_copy(update={"public_url": public_url})
    updated = config.model_copy(update={"channels": channels, "server": server})
    if patient:
        dispatcher = updated.router.dispatcher.model_copy(
            update={"max_attempts": 1000, "backoff_max_seconds": 0.2}
        )
        media = updated.router.media.model_copy(
            update={"poll_seconds": 0.05, "backoff_seconds": 0.01, "backoff_max_seconds": 0.2}
        )
        router = updated.router.model_copy(update={"dispatcher": dispatcher, "media": media})
        updated = updated.model_copy(update={"router": router})
    return updated


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def city(
    database: Database, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[bot_module.Bot, MemoryChannel]]:
    """A running bot on each database with the small FAQ, a fake clock and the in-memory channel."""
    memory = MemoryChannel()
    bot = await bot_module.build(
        config_for_tests(tmp_path), base_dir=ROOT, channels=[memory], webchat=False, db=database, clock=clock
    )
    async with bot.running(sweeps=False):  # the tests sweep on their own fake clock
        yield bot, memory


async def outbox_of(bot: bot_module.Bot) -> list[Outbox]:
    """Every outbox row, oldest first."""
    async with bot.db.session() as s:
        return list((await s.exec(select(Outbox).order_by(col(Outbox.id)))).all())


async def all_sent(bot: bot_module.Bot) -> bool:
    """Whether something was queued and all of it has been sent."""
    rows = await outbox_of(bot)
    return bool(rows) and all(r.status == OutboxStatus.SENT for r in rows)
