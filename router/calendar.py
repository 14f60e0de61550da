"""Working time in the city's zone: opening hours, public holidays and Seoul's same-day rule.

Every computation happens on the wall clock of the configured zone and is converted to UTC instants
range by range, so a day on which daylight-saving time starts or ends simply has a shorter or longer
range (a day open 00:00-24:00 is 23 or 25 hours long). Results are aware datetimes in UTC.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""The keys of `CalendarConfig.hours`, in `date.weekday()` order."""

EXTRA_HOLIDAY_NAME = "City holiday"
"""`holiday_name` of a date in `extra_holidays` that is not also a public holiday."""

_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_SEARCH_DAYS = 3660
"""How far the calendar looks ahead before deciding it has no working time at all."""

Ranges = tuple[tuple[int, int], ...]
"""Opening ranges of one day as (start, end) minutes after midnight; the end may be 1440 (24:00)."""


def _clock_minutes(hour: str, minute: str, *, end: bool) -> int:
    h, m = int(hour), int(minute)
    if h == 24 and m == 0 and not end:
        raise ValueError("24:00 is allowed only as an end")
    if m > 59 or h > 24 or (h == 24 and m):
        raise ValueError(f"{hour}:{minute} is not a time of day")
    return h * 60 + m


def parse_ranges(day: str, value: str) -> Ranges:
    """The ranges of one `hours` entry, e.g. "09:00-12:00,13:00-18:00"; errors name the day and the text."""
    ranges: list[tuple[int, int]] = []
    texts: list[str] = []
    for part in value.split(","):
        text = part.strip()
        match = _RANGE.match(text.replace(" ", ""))
        if not match:
            raise ValueError(f'hours.{day}: {text!r} is not a range "HH:MM-HH:MM" (in {value!r})')
        sh, sm, eh, em = match.groups()
        try:
            start = _clock_minutes(sh, sm, end=False)
            end = _clock_minutes(eh, em, end=True)
        except ValueError as exc:
            raise ValueError(f"hours.{day}: {exc} in {text!r}") from None
        if start >= end:
            raise ValueError(f"hours.{day}: {text!r} does not start before it ends")
        if ranges and start < ranges[-1][1]:
            raise ValueError(
                f"hours.{day}: {text!r} overlaps or comes before {texts[-1]!r} "
                f"(ranges must be in order and must not overlap, in {value!r})"
            )
        ranges.append((start, end))
        texts.append(text)
    return tuple(ranges)


def _check_holidays(country: str, subdivision: str | None) -> None:
    if country not in holidays.list_supported_countries():
        # country_holidays() also takes the package's class names ("Korea", "SouthKorea"): codes only here.
        raise ValueError(
            f"the holidays package does not know country {country!r} (use an ISO code such as KR)"
        )
    try:
        holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError as exc:
        where = f"country {country!r}" + (f" subdivision {subdivision!r}" if subdivision else "")
        raise ValueError(f"the holidays package does not know {where}: {exc}") from None


def _default_hours() -> dict[str, str]:
    return dict.fromkeys(WEEKDAYS[:5], "09:00-18:00")


class CalendarConfig(BaseModel):
    """The `router.calendar` section of config.yaml."""

    model_config = ConfigDict(extra="forbid")

    country: str = Field(default="KR", description="ISO country code for public holidays")
    subdivision: str | None = Field(default=None, description="state or province, where the country has them")
    hours: dict[str, str] = Field(
        default_factory=_default_hours,
        description='opening hours per weekday (mon ... sun), e.g. "09:00-12:00,13:00-18:00"; '
        "an absent day is closed",
    )
    extra_holidays: list[date] = Field(default_factory=list, description="city-specific closed days")
    extra_working_days: list[date] = Field(
        default_factory=list, description="public holidays or closed weekdays the city works anyway"
    )
    same_day_cutoff: time = Field(
        default=time(18, 0), description="a question received before this on a working day is due that day"
    )

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        _check_holidays(value, None)
        return value

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, str]) -> dict[str, str]:
        for day, text in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"hours: unknown weekday {day!r} (use {', '.join(WEEKDAYS)})")
            parse_ranges(day, text)
        if not value:
            raise ValueError("hours: no day has opening hours")
        return value

    @field_validator("same_day_cutoff", mode="before")
    @classmethod
    def _cutoff_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 18:00 as the base-60 number 1080, which pydantic would take as
            # 1080 seconds after midnight (00:18).
            raise ValueError(f'same_day_cutoff: got the number {value}; write the time quoted, e.g. "18:00"')
        return value

    @field_validator("same_day_cutoff")
    @classmethod
    def _naive_cutoff(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("same_day_cutoff: give a time without a zone (the calendar's zone applies)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CalendarConfig:
        if self.subdivision is not None:
            _check_holidays(self.country, self.subdivision)
        both = sorted(set(self.extra_holidays) & set(self.extra_working_days))
        if both:
            listed = ", ".join(d.isoformat() for d in both)
            raise ValueError(f"{listed}: both in extra_holidays and in extra_working_days")
        return self


class WorkingCalendar:
    """Working days and working time for one city."""

    def __init__(self, config: CalendarConfig, zone: ZoneInfo) -> None:
        self.config = config
        self.zone = zone
        self._ranges: dict[int, Ranges] = {
            WEEKDAYS.index(day): parse_ranges(day, text) for day, text in config.hours.items()
        }
        # An extra working day on a weekday without hours opens like a Monday (or, without Monday hours,
        # like the first day of the week that has some).
        self._fallback = self._ranges.get(0) or next(self._ranges[i] for i in range(7) if i in self._ranges)
        self._extra_holidays = frozenset(config.extra_holidays)
        self._extra_working = frozenset(config.extra_working_days)
        # Names in the country's own language, whatever the process's locale (holidays reads LANG otherwise).
        self._language = holidays.country_holidays(config.country, subdiv=config.subdivision).default_language
        self._years: dict[int, holidays.HolidayBase] = {}

    # Days

    def _public_holiday(self, day: date) -> str | None:
        year = self._years.get(day.year)
        if year is None:
            year = holidays.country_holidays(
                self.config.country, subdiv=self.config.subdivision, years=day.year, language=self._language
            )
            self._years[day.year] = year
        return year.get(day)

    def holiday_name(self, day: date) -> str | None:
        """The public or city holiday that closes `day`; None on other days and on extra working days."""
        if day in self._extra_working:
            return None
        name = self._public_holiday(day)
        if name is None and day in self._extra_holidays:
            return EXTRA_HOLIDAY_NAME
        return name

    def is_working_day(self, day: date) -> bool:
        if day in self._extra_working:
            return True
        if day.weekday() not in self._ranges or day in self._extra_holidays:
            return False
        return self._public_holiday(day) is None

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        for offset in range(1, _SEARCH_DAYS + 1):
            candidate = day + timedelta(days=offset)
            if self.is_working_day(candidate):
                return candidate
        raise RuntimeError(f"no working day within {_SEARCH_DAYS} days after {day.isoformat()}")

    def day_ranges(self, day: date) -> Ranges:
        """The opening ranges of `day` (empty on a day that is not a working day)."""
        if not self.is_working_day(day):
            return ()
        return self._ranges.get(day.weekday(), self._fallback)

    def _wall(self, day: date, minutes: int) -> datetime:
        """The first UTC instant at which the clocks of the zone show `minutes` after midnight of `day`
        (24:00 is the next midnight), or a later time when DST skips that one: a range is working time
        while the clocks show a time inside it. A time shown twice (clocks going back) is its first time."""
        wall = datetime.combine(day, time()) + timedelta(minutes=minutes)
        later = wall.replace(tzinfo=self.zone).astimezone(UTC)
        if later.astimezone(self.zone).replace(tzinfo=None) == wall:
            return later
        # Skipped: the offset before the change gives an instant after it, the one after it an instant before.
        low = int(wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC).timestamp())
        high = int(later.timestamp())
        while high - low > 1:
            middle = (low + high) // 2
            if datetime.fromtimestamp(middle, self.zone).replace(tzinfo=None) >= wall:
                high = middle
            else:
                low = middle
        return datetime.fromtimestamp(high, UTC)

    def _intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working intervals of `day` as UTC instants: ordered, disjoint and not empty."""
        out: list[tuple[datetime, datetime]] = []
        for start, end in self.day_ranges(day):
            a, b = self._wall(day, start), self._wall(day, end)
            if b > a:
                out.append((a, b))
        return out

    # Deadlines

    def same_day_due(self, received: datetime) -> datetime:
        """Seoul's rule: received on a working day before the cutoff (and before that day's hours end), due at
        the end of that day's hours; otherwise at the end of the next working day's hours. UTC."""
        local = _aware(received, "received").astimezone(self.zone)
        day = local.date()
        if self.is_working_day(day) and local.time() < self.config.same_day_cutoff:
            end = self._day_end(day)
            if end is not None and received < end:
                return end
        while True:
            day = self.next_working_day(day)
            end = self._day_end(day)
            if end is not None:
                return end

    def _day_end(self, day: date) -> datetime | None:
        intervals = self._intervals(day)
        return intervals[-1][1] if intervals else None

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment `hours` working hours after `start`, counting only time inside working ranges. From a
        time outside hours counting begins at the next range's start (so 0 hours gives that start). UTC."""
        if not math.isfinite(hours) or hours < 0:
            raise ValueError(f"hours must be a finite number >= 0, got {hours!r}")
        at = _aware(start, "start").astimezone(UTC)
        remaining = timedelta(hours=hours)
        day = at.astimezone(self.zone).date()
        idle = 0
        while True:
            intervals = self._intervals(day)
            if intervals and intervals[-1][1] > at:
                if at <= intervals[0][0]:
                    # The whole day lies ahead: skip it in one step when it is not enough.
                    total = sum((b - a for a, b in intervals), timedelta())
                    if remaining > total:
                        remaining -= total
                        day += timedelta(days=1)
                        idle = 0
                        continue
                for a, b in intervals:
                    if b <= at:
                        continue
                    begin = max(a, at)
                    if remaining <= b - begin:
                        return begin + remaining
                    remaining -= b - begin
                at = intervals[-1][1]
                idle = 0
            else:
                idle += 1
                if idle > _SEARCH_DAYS:
                    raise RuntimeError(
                        f"no working time within {_SEARCH_DAYS} days after {start.isoformat()}"
                    )
            day += timedelta(days=1)

    def working_seconds_between(self, start: datetime, end: datetime) -> float:
        """Working time in [start, end), in seconds; 0 if `end` is not after `start`."""
        begin = _aware(start, "start").astimezone(UTC)
        finish = _aware(end, "end").astimezone(UTC)
        if finish <= begin:
            return 0.0
        total = timedelta()
        day = begin.astimezone(self.zone).date()
        last = finish.astimezone(self.zone).date()
        while day <= last:
            for a, b in self._intervals(day):
                low, high = max(a, begin), min(b, finish)
                if high > low:
                    total += high - low
            day += timedelta(days=1)
        return total.total_seconds()


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got the naive {value.isoformat()}")
    return value
