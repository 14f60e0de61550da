"""The monthly report's figures: a calendar month in the city's zone, the city's figures of
router/figures.py for it, and what only the report shows (contacts per day, the rating scale, the
FAQ's entries, the themes of what people wrote). Pure computation."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from router.calendar import WorkingCalendar
from router.figures import Figures
from router.report_terms import Theme
from store.data import TicketFacts

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        match = _MONTH.match(text.strip())
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise ValueError(f"{text!r} is not a month: expected YYYY-MM, e.g. 2026-11")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, moment: datetime, zone: ZoneInfo) -> Month:
        local = moment.astimezone(zone)
        return cls(local.year, local.month)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def range(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end): midnight of the 1st to midnight of the next month's 1st, in the city's zone."""
        start = datetime.combine(self.first_day, time(), tzinfo=zone)
        return start, datetime.combine(self.next().first_day, time(), tzinfo=zone)

    def days(self) -> list[date]:
        first, following = self.first_day, self.next().first_day
        return [first + timedelta(days=n) for n in range((following - first).days)]

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def first_working_day(month: Month, calendar: WorkingCalendar) -> date:
    first = month.first_day
    return first if calendar.is_working_day(first) else calendar.next_working_day(first)


def contacts_by_day(facts: Iterable[TicketFacts], month: Month, zone: ZoneInfo) -> dict[date, dict[str, int]]:
    """New tickets per local day of the month and channel (every day of the month, zero or not)."""
    start, end = month.range(zone)
    counted: dict[date, dict[str, int]] = {day: defaultdict(int) for day in month.days()}
    for t in facts:
        if start <= t.created_at < end:
            counted[t.created_at.astimezone(zone).date()][t.channel] += 1
    return {day: dict(channels) for day, channels in counted.items()}


def rating_counts(facts: Iterable[TicketFacts], start: datetime, end: datetime) -> dict[int, int]:
    """How many ratings of each value 1-5 were given in [start, end)."""
    found = Counter(
        t.rating for t in facts if t.rating is not None and t.rated_at and start <= t.rated_at < end
    )
    return {value: found.get(value, 0) for value in range(1, 6)}


@dataclass(frozen=True)
class MonthFigures:
    """Everything the report shows for one month; no text of a citizen's."""

    month: Month
    zone: ZoneInfo
    figures: Figures
    by_day: dict[date, dict[str, int]]
    ratings: dict[int, int]
    answered: list[tuple[str, int]]  # FAQ entry, tickets answered
    turned_down: list[tuple[str, int]]  # FAQ entry, "0" after its answer
    asked: list[Theme]  # the largest groups of forwarded texts
    missed: list[Theme]  # the largest groups of what the FAQ had nothing for
    missed_count: tuple[int, int]  # (forwarded without an entry, sent to review)
    comments: list[Theme]  # themes of the rating comments
    comment_count: int
    entry_titles: dict[str, str] = field(default_factory=dict)  # entry id -> its question, to show

    @property
    def channels(self) -> list[str]:
        """Channels by contacts, most first."""
        return sorted(self.figures.contacts, key=lambda c: (-self.figures.contacts[c], c))

    @property
    def departments(self) -> list[str]:
        """Departments with a resolved ticket in the month, by name."""
        return sorted(set(self.figures.on_time) | set(self.figures.handling_hours))

    def title(self, entry: str) -> str:
        return self.entry_titles.get(entry, entry)


__all__ = [
    "Month",
    "MonthFigures",
    "contacts_by_day",
    "first_working_day",
    "rating_counts",
]
