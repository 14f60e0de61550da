"""`bot.py report monthly --month YYYY-MM --out DIR`: the monthly report of citizens' voice as files
(router/report.py), without posting it anywhere."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from bot import resolve
from commands.support import fail, open_store
from knowledge import KnowledgeError, KnowledgeHolder
from router.calendar import WorkingCalendar
from router.report import ReportMaker, entry_titles
from router.report_figures import Month
from store import utcnow

if TYPE_CHECKING:
    from server.config import BotConfig


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser("report", help="the monthly report of citizens' voice")
    actions = report.add_subparsers(dest="action", required=True)
    monthly = actions.add_parser(
        "monthly",
        help="write one month's report: HTML with charts, a PDF and each chart and page as PNG",
        description="Write the report of one calendar month (in the city's time zone) into DIR: "
        "report.html (one file, charts inside), report.pdf (a page per section), chart-*.png and "
        "page-*.png. It shows figures and themes only, never a citizen's words, name or number.",
    )
    monthly.add_argument("--month", help="YYYY-MM (default: the previous month)")
    monthly.add_argument(
        "--out", type=Path, help="folder to write into (default: router.report.folder/YYYY-MM)"
    )


def run(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    return asyncio.run(monthly(config, base_dir, args))


async def monthly(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    zone = config.router.zone
    try:
        month = Month.parse(args.month) if args.month else Month.of(utcnow(), zone).previous()
    except ValueError as exc:
        return fail(f"--month {exc}")
    folder = args.out or resolve(base_dir, config.router.report.folder) / str(month)
    language = config.router.default_language
    knowledge = KnowledgeHolder(
        resolve(base_dir, config.knowledge.path),
        known_departments=set(config.departments),
        default_confidence=config.knowledge.default_confidence(),
    )
    try:
        knowledge.load()
        titles = entry_titles(knowledge, language)
    except KnowledgeError as exc:  # the report still names the entries, by id
        print(f"the FAQ does not load ({len(exc.problems)} problem(s)): entries are shown by id")
        titles = dict
    db = await open_store(config, base_dir)
    try:
        maker = ReportMaker(
            db,
            WorkingCalendar(config.router.calendar, zone),
            config.departments,
            language,
            titles,
        )
        rendered = await maker.write(month, folder)
    finally:
        await db.close()
    print(rendered.summary)
    print(f"\nwrote {rendered.html}, {rendered.pdf} and {len(rendered.pngs)} PNG files")
    return 0
