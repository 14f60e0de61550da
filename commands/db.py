"""`bot.py db upgrade | purge`: the database's schema, and the retention purge now."""

from __future__ import annotations

import argparse
from pathlib import Path

import progress
from bot import build
from server.config import BotConfig
from store import open_database


async def run(config: BotConfig, base_dir: Path, action: str) -> int:
    if action == "purge":
        return await _purge(config, base_dir)
    db = open_database(config.store, base_dir=base_dir)
    try:
        await db.upgrade()
        print(f"database at revision {await db.current_revision()}")
    finally:
        await db.close()
    return 0


async def _purge(config: BotConfig, base_dir: Path) -> int:
    """The retention purge now, instead of at the server's next hourly pass."""
    days = config.router.retention.days
    if days is None:
        print("router.retention.days is not set: nothing is ever purged")
        return 0
    bot = await build(config, base_dir=base_dir, webchat=False, providers=False)
    try:
        purged = await bot.sweeper.purge_once(progress=progress.terminal("purging", unit="ticket"))
    finally:
        await bot.db.close()
    print(
        f"purged what is older than {days:g} days: tickets {purged.tickets}, "
        f"messages {purged.messages}, contacts {purged.contacts}, channel memories {purged.memories}"
    )
    return 0


# The labelled texts `faq calibrate` reads unless told otherwise, kept in the FAQ folder.
DEFAULT_CALIBRATION_QUERIES = "calibration-queries.jsonl"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="the database")
    db_actions = db.add_subparsers(dest="action", required=True)
    db_actions.add_parser("upgrade", help="apply pending migrations")
    db_actions.add_parser(
        "purge",
        help="purge citizens' texts and addresses past router.retention.days now (the server does it hourly)",
    )
