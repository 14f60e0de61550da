"""What the command modules share: error output, the store, and --since."""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from store import Database, open_database, utcnow

if TYPE_CHECKING:
    from server.config import BotConfig


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def list_problems(heading: str, problems: Sequence[object]) -> int:
    print(heading, file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


async def open_store(config: BotConfig, base_dir: Path) -> Database:
    db = open_database(config.store, base_dir=base_dir)
    if config.store.migrate_on_start:
        await db.upgrade()
    return db


def parse_since(text: str | None, zone: ZoneInfo, *, default: timedelta | None) -> datetime | None:
    """--since as an aware time: a date is its midnight in the city's time zone."""
    if not text:
        return None if default is None else utcnow() - default
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: expected a date like 2026-11-01 (or 2026-11-01T09:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def display_width(text: str) -> int:
    """How many terminal columns a text takes: Korean and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
