"""The monthly report of citizens' voice: gather a month from the store, compute, render (report_*.py),
and post it to staff once, on the first working day of the next month.

Posting happens exactly once across restarts and instances: the month's mark (a channel memory row
"report"/"monthly:YYYY-MM") is inserted in the same transaction as the post's outbox row, and the
row's key lets only one transaction have it. A server that was down on the first working day posts
when it is back, later that month."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from knowledge import KnowledgeHolder
from router.calendar import WorkingCalendar
from router.config import DepartmentConfig, ReportConfig, RouterConfig
from router.figures import compute
from router.lifecycle import Lifecycle
from router.report_figures import Month, MonthFigures, contacts_by_day, first_working_day, rating_counts
from router.report_render import Rendered, render
from router.report_terms import Theme, themes
from router.report_texts import ReportTexts
from store import Database, data, utcnow

log = logging.getLogger("router.report")

MEMORY_CHANNEL = "report"
# Forwards the FAQ had nothing for, as `faq gaps` counts them (commands/faq_gaps.py's GAP_REASONS):
# no entry came close (triage), or a keyword rule or the department model chose.
GAP_REASONS = ("triage", "keyword:", "model")


@dataclass
class ReportMaker:
    """Makes one month's report from the store."""

    db: Database
    calendar: WorkingCalendar
    departments: Mapping[str, DepartmentConfig]
    language: str
    entry_titles: Callable[[], dict[str, str]] = dict  # entry id -> its question in `language`
    clock: Callable[[], datetime] = utcnow

    async def figures(self, month: Month) -> MonthFigures:
        zone = self.calendar.zone
        start, end = month.range(zone)
        async with self.db.session() as session:
            facts = await data.ticket_facts(session, start=start, end=end)
            answered = await data.answered_entries(session, start=start, end=end)
            turned_down = await data.turned_down_entries(session, start=start, end=end)
            decided = await data.first_questions(
                session, start=start, end=end, statuses=("forwarded", "review")
            )
            comments = await data.rating_comments(session, start=start, end=end)
        forwarded = [said for said in decided if said.kind == "forwarded"]
        missed = [
            said for said in decided if said.kind == "review" or (said.reason or "").startswith(GAP_REASONS)
        ]

        def grouped() -> tuple[list[Theme], list[Theme], list[Theme]]:
            return themes(forwarded), themes(missed), themes(comments)

        asked_themes, missed_themes, comment_themes = await asyncio.to_thread(grouped)
        return MonthFigures(
            month=month,
            zone=zone,
            figures=compute(facts, start=start, end=end, now=self.clock(), calendar=self.calendar),
            by_day=contacts_by_day(facts, month, zone),
            ratings=rating_counts(facts, start, end),
            answered=answered,
            turned_down=turned_down,
            asked=asked_themes,
            missed=missed_themes,
            missed_count=(
                sum(s.kind == "forwarded" for s in missed),
                sum(s.kind == "review" for s in missed),
            ),
            comments=comment_themes,
            comment_count=len(comments),
            entry_titles=self.entry_titles(),
        )

    def names(self) -> dict[str, str]:
        return {key: d.display_name(self.language) for key, d in self.departments.items()}

    async def write(self, month: Month, folder: Path, *, svg: bool = False) -> Rendered:
        """The month's report into `folder`: report.html, report.pdf, and the PNGs (`svg`: and
        the pages as SVG)."""
        report = await self.figures(month)
        texts = ReportTexts.load(self.language)
        return await asyncio.to_thread(
            render, report, texts=texts, names=self.names(), folder=folder, made=self.clock(), svg=svg
        )


def entry_titles(knowledge: KnowledgeHolder, language: str) -> Callable[[], dict[str, str]]:
    """Each FAQ entry's first question as the YAML files have it (never a learned variant, which is a
    citizen's text), in `language`, else English, else the entry's first language."""

    def titles() -> dict[str, str]:
        found = {}
        for entry in knowledge.files_base.entries:
            questions = entry.questions.get(language) or entry.questions.get("en")
            found[entry.id] = (questions or next(iter(entry.questions.values())))[0]
        return found

    return titles


class MonthlyPoster:
    """Once a month, after `post_at` on its first working day: the previous month's report, written
    to the configured folder and announced to staff (`channel`, or the desk's alerts inbox)."""

    def __init__(
        self, maker: ReportMaker, lifecycle: Lifecycle, config: ReportConfig, *, folder: Path
    ) -> None:
        self.maker = maker
        self.lifecycle = lifecycle
        self.config = config
        self.folder = folder

    @property
    def check_seconds(self) -> float:
        return self.config.check_minutes * 60

    def due(self, now: datetime) -> Month | None:
        """The month whose report is due at `now`: the previous one, from `post_at` on the first
        working day of this one (and the rest of this month, to catch up after downtime)."""
        calendar = self.maker.calendar
        local = now.astimezone(calendar.zone)
        this = Month(local.year, local.month)
        first = first_working_day(this, calendar)
        if (local.date(), local.time()) < (first, self.config.post_at):
            return None
        return this.previous()

    async def post_if_due(self) -> Month | None:
        """Make and post the due month's report unless it was posted; the month posted, or None."""
        now = self.lifecycle.clock()
        month = self.due(now)
        if month is None:
            return None
        name = f"monthly:{month}"
        end = month.range(self.maker.calendar.zone)[1]
        async with self.maker.db.session() as session:
            if await data.recall(session, channel=MEMORY_CHANNEL, name=name) is not None:
                return None
            opened = await data.city_was_open(session, before=end)
        if not opened:  # a new install has no month behind it: nothing to report or catch up
            async with self.maker.db.transaction() as session:
                await data.claim_once(session, channel=MEMORY_CHANNEL, name=name, value="-", at=now)
            log.info("monthly report for %s: no tickets before %s, nothing to report", month, end.date())
            return None
        rendered = await self.maker.write(month, self.folder / str(month))
        texts = ReportTexts.load(self.maker.language)
        files = ", ".join(str(path) for path in (rendered.html, rendered.pdf))
        label = texts.month(month.year, month.month)
        message = "\n".join([texts("post", month=label), rendered.summary, texts("files", files=files)])
        async with self.maker.db.transaction() as session:
            if not await data.claim_once(session, channel=MEMORY_CHANNEL, name=name, value=files, at=now):
                return None  # another instance posted it meanwhile
            feed = self.lifecycle.desk_feed
            inbox = self.config.channel or (feed.config.alerts_inbox if feed else None)
            if feed is not None and inbox is not None:
                await feed.alert(session, message, now=now, inbox=inbox)
            else:
                log.warning("monthly report for %s: no staff desk inbox to post to (files: %s)", month, files)
        self.lifecycle.outbox_written()
        log.info("monthly report for %s written to %s and posted", month, rendered.html.parent)
        return month


def monthly_poster(
    config: RouterConfig, db: Database, lifecycle: Lifecycle, knowledge: KnowledgeHolder, folder: Path
) -> MonthlyPoster | None:
    """The server's monthly poster (None when the report is off); `folder` is resolved by the caller."""
    if not config.report.enabled:
        return None
    language = config.default_language
    maker = ReportMaker(
        db,
        lifecycle.calendar,
        lifecycle.departments,
        language,
        entry_titles(knowledge, language),
        clock=lifecycle.clock,
    )
    return MonthlyPoster(maker, lifecycle, config.report, folder=folder)


__all__ = ["GAP_REASONS", "MonthlyPoster", "ReportMaker", "entry_titles", "monthly_poster"]
