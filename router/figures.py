"""The city's figures from tickets' times (store.data.ticket_facts), for any time range: the public
status page's weeks, a monthly report. Pure computation; the calendar decides working time.

- contacts by channel: tickets created in the range, by the channel they came in on. A ticket is
  one question or report; the citizen's later messages on it (details, a rating, "status?") are not
  new contacts, and the count survives the retention purge (messages lose their text, tickets stay).
- same-day share: of the tickets created in the range on a working day before the same-day cutoff,
  those whose first response (an answer, a staff reply, a resolution) came the same local day. A
  ticket from today still waiting is not counted yet: its day is not over.
- on-time share, by department: of the tickets resolved in the range that had a due time, those
  resolved by it and never late. A late ticket gets a new due time (the sweep's escalation), so
  "resolved before due_at" alone would count it as on time.
- handling time, by department: working hours from the first forwarding to the resolution, for
  tickets resolved in the range.
- satisfaction: the mean 1-5 rating and how many ratings were given in the range.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from router.calendar import WorkingCalendar
from store.data import TicketFacts


@dataclass(frozen=True)
class Share:
    """`hits` of `total`; `value` is None when there is nothing to count."""

    hits: int = 0
    total: int = 0

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None

    def __add__(self, other: Share) -> Share:
        return Share(self.hits + other.hits, self.total + other.total)


@dataclass(frozen=True)
class Mean:
    """The mean of `count` values (None when there are none)."""

    total: float = 0.0
    count: int = 0

    @property
    def value(self) -> float | None:
        return self.total / self.count if self.count else None

    def __add__(self, other: Mean) -> Mean:
        return Mean(self.total + other.total, self.count + other.count)


@dataclass(frozen=True)
class Figures:
    """The figures of one range [start, end)."""

    start: datetime
    end: datetime
    contacts: dict[str, int] = field(default_factory=dict)  # by channel
    same_day: Share = Share()
    on_time: dict[str, Share] = field(default_factory=dict)  # by department
    handling_hours: dict[str, Mean] = field(default_factory=dict)  # by department
    satisfaction: Mean = Mean()

    @property
    def total_contacts(self) -> int:
        return sum(self.contacts.values())

    @property
    def on_time_all(self) -> Share:
        return sum(self.on_time.values(), Share())

    @property
    def handling_all(self) -> Mean:
        return sum(self.handling_hours.values(), Mean())


def compute(
    facts: Iterable[TicketFacts],
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    calendar: WorkingCalendar,
) -> Figures:
    """The figures of [start, end) from tickets' facts (any superset of those the range needs)."""
    zone = calendar.zone
    today = now.astimezone(zone).date()
    cutoff = calendar.config.same_day_cutoff
    contacts: dict[str, int] = defaultdict(int)
    same_day = Share()
    on_time: dict[str, Share] = defaultdict(Share)
    handling: dict[str, Mean] = defaultdict(Mean)
    satisfaction = Mean()
    for t in facts:
        if start <= t.created_at < end:
            contacts[t.channel] += 1
            counted = _same_day(t, zone, cutoff, calendar, today)
            if counted is not None:
                same_day += Share(int(counted), 1)
        if t.resolved_at is not None and start <= t.resolved_at < end:
            department = t.department or ""
            if t.due_at is not None:
                on_time[department] += Share(int(t.resolved_at <= t.due_at and t.escalations == 0), 1)
            if t.forwarded_at is not None:
                seconds = calendar.working_seconds_between(t.forwarded_at, t.resolved_at)
                handling[department] += Mean(seconds / 3600, 1)
        if t.rating is not None and t.rated_at is not None and start <= t.rated_at < end:
            satisfaction += Mean(float(t.rating), 1)
    return Figures(start, end, dict(contacts), same_day, dict(on_time), dict(handling), satisfaction)


def _same_day(
    t: TicketFacts, zone: ZoneInfo, cutoff: time, calendar: WorkingCalendar, today: date
) -> bool | None:
    """Whether a ticket under the same-day rule was answered the same day; None if the rule does not
    apply to it (a weekend, a holiday, after the cutoff) or its day is not over and it still waits."""
    created = t.created_at.astimezone(zone)
    if not calendar.is_working_day(created.date()) or created.time() >= cutoff:
        return None
    if t.first_response_at is None:
        return None if created.date() == today else False
    return t.first_response_at.astimezone(zone).date() == created.date()


def week_start(moment: datetime, zone: ZoneInfo) -> datetime:
    """The Monday 00:00, in the city's zone, of the week `moment` falls in (an aware datetime)."""
    local = moment.astimezone(zone).date()
    monday = local - timedelta(days=local.weekday())
    return datetime.combine(monday, time(), tzinfo=zone)


def weeks(now: datetime, zone: ZoneInfo, *, count: int) -> list[tuple[datetime, datetime]]:
    """[start, end) of the week `now` falls in and of the `count` weeks before it, newest first.
    Each runs from a Monday 00:00 to the next, in the city's zone (a week with a daylight-saving
    change is an hour shorter or longer); the current one has nothing after `now` yet."""
    current = week_start(now, zone).date()
    ranges = []
    for back in range(count + 1):
        monday = current - timedelta(weeks=back)
        begin = datetime.combine(monday, time(), tzinfo=zone)
        finish = datetime.combine(monday + timedelta(weeks=1), time(), tzinfo=zone)
        ranges.append((begin, finish))
    return ranges


def by_week(
    facts: Sequence[TicketFacts], *, now: datetime, calendar: WorkingCalendar, count: int
) -> list[Figures]:
    """The figures of this week so far and of the `count` weeks before, newest first."""
    return [
        compute(facts, start=start, end=end, now=now, calendar=calendar)
        for start, end in weeks(now, calendar.zone, count=count)
    ]


__all__ = ["Figures", "Mean", "Share", "by_week", "compute", "week_start", "weeks"]
