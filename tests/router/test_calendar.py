"""Working calendar: Seoul's same-day rule, working hours across nights, weekends, holidays and DST."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
from pydantic import ValidationError

from router.calendar import EXTRA_HOLIDAY_NAME, CalendarConfig, WorkingCalendar

SEOUL = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")
LUNCH = dict.fromkeys(["mon", "tue", "wed", "thu", "fri"], "09:00-12:00,13:00-18:00")


def kst(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SEOUL)


def nyc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


def seoul(**config: Any) -> WorkingCalendar:
    return WorkingCalendar(CalendarConfig(**config), SEOUL)


def new_york(**config: Any) -> WorkingCalendar:
    return WorkingCalendar(CalendarConfig(country="US", **config), NEW_YORK)


def is_utc(value: datetime) -> bool:
    return value.tzinfo is UTC


# Days and holidays


def test_the_package_knows_koreas_2026_holidays() -> None:
    calendar = seoul()
    closed_weekdays = [
        date(2026, 1, 1),
        date(2026, 2, 16),
        date(2026, 2, 17),
        date(2026, 2, 18),
        date(2026, 3, 2),  # for Mar 1, a Sunday
        date(2026, 5, 1),  # Labor Day, a public holiday from 2026
        date(2026, 5, 5),
        date(2026, 5, 25),  # for Buddha's Birthday on Sunday May 24
        date(2026, 6, 3),  # local elections
        date(2026, 7, 17),  # Constitution Day, a public holiday again from 2026
        date(2026, 8, 17),  # for Aug 15, a Saturday
        date(2026, 9, 24),
        date(2026, 9, 25),
        date(2026, 10, 5),  # for Oct 3, a Saturday
        date(2026, 10, 9),
        date(2026, 12, 25),
    ]
    for day in closed_weekdays:
        assert day.weekday() < 5
        assert not calendar.is_working_day(day), day
        assert calendar.holiday_name(day), day
    assert calendar.holiday_name(date(2026, 9, 25)) == "추석"
    assert calendar.holiday_name(date(2026, 9, 26)) == "추석 다음날"  # a Saturday: closed anyway
    assert calendar.holiday_name(date(2026, 6, 3)) == "지방선거일"
    working = {date(2026, 1, 1) + timedelta(days=n) for n in range(365)}
    working = {d for d in working if calendar.is_working_day(d)}
    assert len(working) == 261 - len(closed_weekdays)  # 2026 has 261 weekdays
    assert calendar.is_working_day(date(2026, 11, 23))
    assert not calendar.is_working_day(date(2026, 11, 28))  # Saturday
    assert calendar.holiday_name(date(2026, 11, 23)) is None
    assert calendar.holiday_name(date(2026, 11, 28)) is None  # a weekend is not a holiday


def test_holiday_names_do_not_follow_the_process_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    assert seoul().holiday_name(date(2026, 9, 25)) == "추석"
    assert new_york().holiday_name(date(2026, 7, 3)) == "Independence Day (observed)"


def test_next_working_day_is_strictly_after() -> None:
    calendar = seoul()
    assert calendar.next_working_day(date(2026, 11, 23)) == date(2026, 11, 24)
    assert calendar.next_working_day(date(2026, 11, 27)) == date(2026, 11, 30)  # Fri -> Mon
    assert calendar.next_working_day(date(2026, 9, 23)) == date(2026, 9, 28)  # Chuseok Thu-Sat
    assert calendar.next_working_day(date(2026, 10, 2)) == date(2026, 10, 6)  # Oct 3 Sat + Oct 5 Mon
    assert calendar.next_working_day(date(2026, 12, 31)) == date(2027, 1, 4)  # Jan 1 2027 is a Friday


def test_an_extra_holiday_closes_the_city() -> None:
    calendar = seoul(extra_holidays=[date(2026, 11, 24)])
    assert not calendar.is_working_day(date(2026, 11, 24))
    assert calendar.holiday_name(date(2026, 11, 24)) == EXTRA_HOLIDAY_NAME
    assert calendar.next_working_day(date(2026, 11, 23)) == date(2026, 11, 25)
    assert calendar.same_day_due(kst(2026, 11, 23, 19, 0)) == kst(2026, 11, 25, 18, 0)
    assert calendar.add_working_hours(kst(2026, 11, 23, 17, 0), 2) == kst(2026, 11, 25, 10, 0)
    # An extra holiday on a public holiday keeps the public name.
    assert seoul(extra_holidays=[date(2026, 9, 25)]).holiday_name(date(2026, 9, 25)) == "추석"


def test_an_extra_working_day_opens_a_public_holiday_with_its_weekdays_hours() -> None:
    calendar = seoul(extra_working_days=[date(2026, 9, 25)])  # Chuseok, a Friday
    assert calendar.is_working_day(date(2026, 9, 25))
    assert calendar.holiday_name(date(2026, 9, 25)) is None
    assert not calendar.is_working_day(date(2026, 9, 24))
    assert calendar.next_working_day(date(2026, 9, 23)) == date(2026, 9, 25)
    assert calendar.same_day_due(kst(2026, 9, 23, 19, 0)) == kst(2026, 9, 25, 18, 0)
    assert calendar.same_day_due(kst(2026, 9, 25, 10, 0)) == kst(2026, 9, 25, 18, 0)
    assert calendar.add_working_hours(kst(2026, 9, 23, 17, 0), 2) == kst(2026, 9, 25, 10, 0)


def test_an_extra_working_day_without_hours_of_its_own_uses_mondays() -> None:
    hours = {"mon": "08:00-17:00", "tue": "09:00-18:00", "sat": "09:00-13:00"}
    calendar = seoul(hours=hours, extra_working_days=[date(2026, 11, 29), date(2026, 10, 3)])
    # Sunday Nov 29: no Sunday hours, so Monday's.
    assert calendar.is_working_day(date(2026, 11, 29))
    assert calendar.same_day_due(kst(2026, 11, 29, 10, 0)) == kst(2026, 11, 29, 17, 0)
    assert calendar.working_seconds_between(kst(2026, 11, 29), kst(2026, 11, 30)) == 9 * 3600
    # Saturday Oct 3, National Foundation Day: Saturday has hours, so those.
    assert calendar.same_day_due(kst(2026, 10, 3, 10, 0)) == kst(2026, 10, 3, 13, 0)
    # Without Monday hours: the first day of the week that has some.
    tuesday_only = seoul(hours={"tue": "10:00-16:00"}, extra_working_days=[date(2026, 11, 28)])
    assert tuesday_only.same_day_due(kst(2026, 11, 28, 9, 0)) == kst(2026, 11, 28, 16, 0)


# Seoul's same-day rule


@pytest.mark.parametrize(
    ("received", "due"),
    [
        pytest.param(kst(2026, 11, 23, 10, 0), kst(2026, 11, 23, 18, 0), id="monday morning: same day"),
        pytest.param(kst(2026, 11, 23, 7, 0), kst(2026, 11, 23, 18, 0), id="before opening: same day"),
        pytest.param(kst(2026, 11, 23, 17, 59, 59), kst(2026, 11, 23, 18, 0), id="just before the cutoff"),
        pytest.param(kst(2026, 11, 23, 18, 0), kst(2026, 11, 24, 18, 0), id="at the cutoff: next day"),
        pytest.param(kst(2026, 11, 23, 21, 30), kst(2026, 11, 24, 18, 0), id="monday evening: tuesday"),
        pytest.param(kst(2026, 11, 27, 18, 30), kst(2026, 11, 30, 18, 0), id="friday evening: monday"),
        pytest.param(kst(2026, 11, 28, 10, 0), kst(2026, 11, 30, 18, 0), id="saturday: monday"),
        pytest.param(kst(2026, 11, 29, 23, 59), kst(2026, 11, 30, 18, 0), id="sunday night: monday"),
        pytest.param(kst(2026, 9, 23, 17, 0), kst(2026, 9, 23, 18, 0), id="before chuseok, early"),
        pytest.param(kst(2026, 9, 23, 19, 0), kst(2026, 9, 28, 18, 0), id="before chuseok, late"),
        pytest.param(kst(2026, 9, 25, 10, 0), kst(2026, 9, 28, 18, 0), id="on chuseok"),
        pytest.param(kst(2026, 10, 2, 19, 0), kst(2026, 10, 6, 18, 0), id="before a substitute monday"),
        pytest.param(kst(2026, 12, 31, 18, 1), kst(2027, 1, 4, 18, 0), id="new year's eve"),
        # 20:00 UTC on Monday is 05:00 on Tuesday in Seoul: Tuesday's rule applies, not Monday's.
        pytest.param(datetime(2026, 11, 23, 20, 0, tzinfo=UTC), kst(2026, 11, 24, 18, 0), id="given in UTC"),
    ],
)
def test_same_day_due(received: datetime, due: datetime) -> None:
    result = seoul().same_day_due(received)
    assert result == due
    assert is_utc(result)


def test_same_day_due_answers_in_utc() -> None:
    assert seoul().same_day_due(kst(2026, 11, 23, 10, 0)) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert str(seoul().same_day_due(kst(2026, 11, 23, 10, 0))) == "2026-11-23 09:00:00+00:00"


def test_same_day_due_follows_the_configured_cutoff() -> None:
    calendar = seoul(same_day_cutoff=time(15, 0))
    assert calendar.same_day_due(kst(2026, 11, 23, 14, 59)) == kst(2026, 11, 23, 18, 0)
    assert calendar.same_day_due(kst(2026, 11, 23, 15, 0)) == kst(2026, 11, 24, 18, 0)


def test_a_day_closing_before_the_cutoff_is_not_due_in_the_past() -> None:
    calendar = seoul(hours={"mon": "09:00-18:00", "sat": "09:00-13:00"})
    assert calendar.same_day_due(kst(2026, 11, 28, 12, 0)) == kst(2026, 11, 28, 13, 0)
    assert calendar.same_day_due(kst(2026, 11, 28, 13, 0)) == kst(2026, 11, 30, 18, 0)
    assert calendar.same_day_due(kst(2026, 11, 28, 15, 0)) == kst(2026, 11, 30, 18, 0)


def test_same_day_due_with_a_lunch_break_is_the_end_of_the_last_range() -> None:
    calendar = seoul(hours=LUNCH)
    assert calendar.same_day_due(kst(2026, 11, 23, 12, 30)) == kst(2026, 11, 23, 18, 0)
    assert calendar.same_day_due(kst(2026, 11, 23, 18, 0)) == kst(2026, 11, 24, 18, 0)


def test_naive_datetimes_are_refused() -> None:
    calendar = seoul()
    naive = datetime(2026, 11, 23, 10, 0)
    with pytest.raises(ValueError, match="received must be an aware datetime"):
        calendar.same_day_due(naive)
    with pytest.raises(ValueError, match="start must be an aware datetime"):
        calendar.add_working_hours(naive, 1)
    with pytest.raises(ValueError, match="end must be an aware datetime"):
        calendar.working_seconds_between(kst(2026, 11, 23), naive)


# Working hours


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        pytest.param(kst(2026, 11, 23, 10, 0), 3, kst(2026, 11, 23, 13, 0), id="within a day"),
        pytest.param(kst(2026, 11, 23, 10, 0), 8, kst(2026, 11, 23, 18, 0), id="to the end of the day"),
        pytest.param(kst(2026, 11, 23, 16, 0), 4, kst(2026, 11, 24, 11, 0), id="across the night"),
        pytest.param(kst(2026, 11, 23, 9, 0), 9, kst(2026, 11, 23, 18, 0), id="a whole day"),
        pytest.param(kst(2026, 11, 23, 9, 0), 10, kst(2026, 11, 24, 10, 0), id="a day and an hour"),
        pytest.param(kst(2026, 11, 23, 9, 0), 9 * 5, kst(2026, 11, 27, 18, 0), id="a whole week"),
        pytest.param(kst(2026, 11, 27, 16, 0), 4, kst(2026, 11, 30, 11, 0), id="across a weekend"),
        pytest.param(kst(2026, 9, 23, 16, 0), 4, kst(2026, 9, 28, 11, 0), id="across chuseok"),
        pytest.param(kst(2026, 2, 13, 17, 0), 2, kst(2026, 2, 19, 10, 0), id="across seollal"),
        pytest.param(kst(2026, 11, 23, 7, 0), 1, kst(2026, 11, 23, 10, 0), id="from early morning"),
        pytest.param(kst(2026, 11, 23, 20, 0), 1, kst(2026, 11, 24, 10, 0), id="from the evening"),
        pytest.param(kst(2026, 11, 28, 10, 0), 1, kst(2026, 11, 30, 10, 0), id="from a saturday"),
        pytest.param(kst(2026, 9, 25, 10, 0), 1, kst(2026, 9, 28, 10, 0), id="from a holiday"),
        pytest.param(kst(2026, 11, 23, 10, 0, 17), 1.5, kst(2026, 11, 23, 11, 30, 17), id="keeps seconds"),
        pytest.param(kst(2026, 11, 23, 10, 0), 1 + 1 / 3600, kst(2026, 11, 23, 11, 0, 1), id="to the second"),
        pytest.param(kst(2026, 11, 23, 17, 59, 59), 1 / 3600, kst(2026, 11, 23, 18, 0), id="the last second"),
        pytest.param(kst(2026, 11, 23, 17, 59, 59), 2 / 3600, kst(2026, 11, 24, 9, 0, 1), id="a second more"),
    ],
)
def test_add_working_hours(start: datetime, hours: float, expected: datetime) -> None:
    result = seoul().add_working_hours(start, hours)
    assert result == expected
    assert is_utc(result)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        pytest.param(kst(2026, 11, 23, 10, 30), kst(2026, 11, 23, 10, 30), id="inside hours: the start"),
        pytest.param(kst(2026, 11, 23, 9, 0), kst(2026, 11, 23, 9, 0), id="at opening: the start"),
        pytest.param(kst(2026, 11, 23, 7, 0), kst(2026, 11, 23, 9, 0), id="before opening: the opening"),
        pytest.param(kst(2026, 11, 23, 18, 0), kst(2026, 11, 24, 9, 0), id="at closing: the next opening"),
        pytest.param(kst(2026, 11, 28, 12, 0), kst(2026, 11, 30, 9, 0), id="saturday: monday's opening"),
    ],
)
def test_add_zero_working_hours(start: datetime, expected: datetime) -> None:
    result = seoul().add_working_hours(start, 0)
    assert result == expected
    assert is_utc(result)


def test_add_working_hours_with_a_lunch_break() -> None:
    calendar = seoul(hours=LUNCH)
    assert calendar.add_working_hours(kst(2026, 11, 23, 11, 0), 2) == kst(2026, 11, 23, 14, 0)
    assert calendar.add_working_hours(kst(2026, 11, 23, 11, 0), 1) == kst(2026, 11, 23, 12, 0)
    assert calendar.add_working_hours(kst(2026, 11, 23, 12, 30), 0) == kst(2026, 11, 23, 13, 0)
    assert calendar.add_working_hours(kst(2026, 11, 23, 12, 30), 1) == kst(2026, 11, 23, 14, 0)
    assert calendar.add_working_hours(kst(2026, 11, 23, 17, 0), 3) == kst(2026, 11, 24, 11, 0)
    assert calendar.add_working_hours(kst(2026, 11, 23, 9, 0), 8 * 5) == kst(2026, 11, 27, 18, 0)
    assert calendar.working_seconds_between(kst(2026, 11, 23), kst(2026, 11, 24)) == 8 * 3600
    assert calendar.working_seconds_between(kst(2026, 11, 23, 11, 30), kst(2026, 11, 23, 13, 30)) == 3600


@pytest.mark.parametrize("hours", [-1, -1e-9, float("nan"), float("inf")])
def test_add_working_hours_refuses_impossible_amounts(hours: float) -> None:
    with pytest.raises(ValueError, match="hours must be a finite number >= 0"):
        seoul().add_working_hours(kst(2026, 11, 23, 10, 0), hours)


def test_a_large_amount_walks_day_by_day(monkeypatch: pytest.MonkeyPatch) -> None:
    calendar = seoul()
    looked_at: list[date] = []
    day_ranges = calendar.day_ranges

    def counting(day: date) -> tuple[tuple[int, int], ...]:
        looked_at.append(day)
        return day_ranges(day)

    monkeypatch.setattr(calendar, "day_ranges", counting)
    start = kst(2026, 1, 5, 9, 0)
    due = calendar.add_working_hours(start, 2000)
    span = (due.astimezone(SEOUL).date() - start.date()).days
    assert 250 < span < 400
    assert len(looked_at) == span + 1  # once per calendar day, not once per hour
    assert calendar.working_seconds_between(start, due) == 2000 * 3600


def test_working_seconds_between() -> None:
    calendar = seoul()
    monday = kst(2026, 11, 23, 0, 0)
    assert calendar.working_seconds_between(monday, monday + timedelta(days=7)) == 45 * 3600
    assert calendar.working_seconds_between(kst(2026, 9, 21), kst(2026, 9, 28)) == 27 * 3600  # Chuseok week
    assert calendar.working_seconds_between(kst(2026, 11, 23, 10, 0), kst(2026, 11, 23, 10, 0, 30)) == 30
    assert calendar.working_seconds_between(kst(2026, 11, 23, 17, 0), kst(2026, 11, 24, 10, 0)) == 2 * 3600
    assert calendar.working_seconds_between(kst(2026, 11, 28, 0, 0), kst(2026, 11, 30, 0, 0)) == 0
    assert calendar.working_seconds_between(kst(2026, 11, 23, 12, 0), kst(2026, 11, 23, 11, 0)) == 0
    assert calendar.working_seconds_between(kst(2026, 11, 23, 12, 0), kst(2026, 11, 23, 12, 0)) == 0
    # The same instants given in UTC.
    start, end = datetime(2026, 11, 23, 8, 0, tzinfo=UTC), datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    assert calendar.working_seconds_between(start, end) == 2 * 3600


# Against a slow reference: one minute at a time, with its own reading of the rules


def reference_minute_is_working(
    zone: ZoneInfo, country: str, hours: dict[int, list[tuple[time, time]]]
) -> Callable[[datetime], bool]:
    public = holidays.country_holidays(country, years=range(2025, 2029))

    def working(instant: datetime) -> bool:
        local = instant.astimezone(zone)
        if local.date() in public:
            return False
        return any(a <= local.time() < b for a, b in hours.get(local.weekday(), []))

    return working


def reference_add(working: Callable[[datetime], bool], start: datetime, minutes: int) -> datetime:
    """Minute-aligned start; the end of the `minutes`-th working minute (or the next working minute's
    start for 0)."""
    step = timedelta(minutes=1)
    at = start.astimezone(UTC)
    counted = 0
    while True:
        if working(at):
            if counted == minutes:
                return at
            counted += 1
            if counted == minutes:
                return at + step
        at += step


def reference_between(working: Callable[[datetime], bool], start: datetime, end: datetime) -> float:
    step = timedelta(minutes=1)
    at, finish, total = start.astimezone(UTC), end.astimezone(UTC), 0
    while at < finish:
        total += working(at)
        at += step
    return total * 60.0


NINE_TO_SIX = {day: [(time(9), time(18))] for day in range(5)}
NINE_TO_SIX_WITH_LUNCH = {day: [(time(9), time(12)), (time(13), time(18))] for day in range(5)}


def random_minute(rng: random.Random, first: datetime, days: int) -> datetime:
    return first + timedelta(minutes=rng.randrange(days * 24 * 60))


def test_large_amounts_match_the_minute_by_minute_reference() -> None:
    rng = random.Random(120)
    calendar = seoul()
    working = reference_minute_is_working(SEOUL, "KR", NINE_TO_SIX)
    for hours in [2000, rng.randrange(1, 800 * 4) / 4, rng.randrange(1, 800 * 4) / 4]:
        start = random_minute(rng, kst(2026, 1, 1), 365)
        expected = reference_add(working, start, round(hours * 60))
        assert calendar.add_working_hours(start, hours) == expected, (start, hours)


def test_lunch_breaks_match_the_minute_by_minute_reference() -> None:
    rng = random.Random(2026)
    calendar = seoul(hours=LUNCH)
    working = reference_minute_is_working(SEOUL, "KR", NINE_TO_SIX_WITH_LUNCH)
    for _ in range(20):
        start = random_minute(rng, kst(2026, 1, 1), 365)
        minutes = rng.choice([0, 1, 59, 60, 180, 181, 480, rng.randrange(2000)])
        expected = reference_add(working, start, minutes)
        assert calendar.add_working_hours(start, minutes / 60) == expected, (start, minutes)
        end = random_minute(rng, start, 10)
        assert calendar.working_seconds_between(start, end) == reference_between(working, start, end)


def test_working_seconds_between_undoes_add_working_hours() -> None:
    rng = random.Random(7)
    for calendar, first in [(seoul(), kst(2026, 1, 1)), (seoul(hours=LUNCH), kst(2026, 1, 1))]:
        for _ in range(200):
            start = first + timedelta(seconds=rng.randrange(365 * 24 * 3600))
            seconds = rng.choice([0, 1, rng.randrange(9 * 3600), rng.randrange(400 * 3600)])
            due = calendar.add_working_hours(start, seconds / 3600)
            assert calendar.working_seconds_between(start, due) == seconds, (start, seconds)
            # Nothing is left to count at the due moment itself: a second later counts one second at most.
            assert calendar.working_seconds_between(due, due + timedelta(seconds=1)) in (0, 1)


# Daylight-saving time (US clocks went forward on 2026-03-08 and back on 2026-11-01)


def test_across_the_march_change_in_new_york() -> None:
    calendar = new_york()
    # Friday 17:00 EST plus two hours: one on Friday, one from Monday 09:00 EDT.
    due = calendar.add_working_hours(nyc(2026, 3, 6, 17, 0), 2)
    assert due == nyc(2026, 3, 9, 10, 0)
    assert due == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)  # EDT is UTC-4
    assert calendar.same_day_due(nyc(2026, 3, 6, 10, 0)) == datetime(2026, 3, 6, 23, 0, tzinfo=UTC)
    assert calendar.same_day_due(nyc(2026, 3, 6, 19, 0)) == datetime(2026, 3, 9, 22, 0, tzinfo=UTC)
    assert calendar.working_seconds_between(nyc(2026, 3, 2), nyc(2026, 3, 16)) == 90 * 3600
    # A US holiday: Independence Day observed on Friday, July 3.
    assert calendar.same_day_due(nyc(2026, 7, 2, 19, 0)) == nyc(2026, 7, 6, 18, 0)


def test_a_day_of_a_dst_change_is_shorter_or_longer_in_real_time() -> None:
    calendar = new_york(hours={"sun": "00:00-24:00"})
    assert calendar.working_seconds_between(nyc(2026, 3, 8), nyc(2026, 3, 9)) == 23 * 3600
    assert calendar.working_seconds_between(nyc(2026, 11, 1), nyc(2026, 11, 2)) == 25 * 3600
    assert calendar.working_seconds_between(nyc(2026, 3, 1), nyc(2026, 3, 2)) == 24 * 3600
    assert calendar.add_working_hours(nyc(2026, 3, 8), 23) == nyc(2026, 3, 9)
    assert calendar.add_working_hours(nyc(2026, 3, 8), 24) == nyc(2026, 3, 15, 1, 0)
    assert calendar.add_working_hours(nyc(2026, 11, 1), 25) == nyc(2026, 11, 2)
    # 01:00-04:00 on the morning the clocks skip 02:00-03:00 is two hours.
    early = new_york(hours={"sun": "01:00-04:00"})
    assert early.working_seconds_between(nyc(2026, 3, 8), nyc(2026, 3, 9)) == 2 * 3600
    assert early.add_working_hours(nyc(2026, 3, 8, 1, 0), 2.5) == nyc(2026, 3, 15, 1, 30)


def test_hours_the_clocks_skip_are_not_working_time() -> None:
    sunday, monday = nyc(2026, 3, 8), nyc(2026, 3, 9)
    skipped = new_york(hours={"sun": "02:15-02:45,03:00-04:00"})
    assert skipped.working_seconds_between(sunday, monday) == 3600
    assert skipped.add_working_hours(sunday, 0) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT
    # A range that starts inside the gap starts when the clocks jump to 03:00.
    from_the_gap = new_york(hours={"sun": "02:30-05:00"})
    assert from_the_gap.working_seconds_between(sunday, monday) == 2 * 3600
    assert from_the_gap.add_working_hours(sunday, 0) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert from_the_gap.same_day_due(sunday) == datetime(2026, 3, 8, 9, 0, tzinfo=UTC)  # 05:00 EDT
    for calendar, hours in [
        (skipped, {6: [(time(2, 15), time(2, 45)), (time(3), time(4))]}),
        (from_the_gap, {6: [(time(2, 30), time(5))]}),
    ]:
        working = reference_minute_is_working(NEW_YORK, "US", hours)
        start, end = nyc(2026, 3, 1), nyc(2026, 3, 16)
        assert calendar.working_seconds_between(start, end) == reference_between(working, start, end)
        for minutes in (0, 30, 60, 61, 150):
            expected = reference_add(working, start, minutes)
            assert calendar.add_working_hours(start, minutes / 60) == expected, minutes


def test_new_york_matches_the_minute_by_minute_reference_across_the_change() -> None:
    rng = random.Random(38)
    calendar = new_york()
    working = reference_minute_is_working(NEW_YORK, "US", NINE_TO_SIX)
    for _ in range(6):
        start = random_minute(rng, nyc(2026, 2, 20), 20)
        minutes = rng.randrange(1, 150 * 60)
        expected = reference_add(working, start, minutes)
        assert calendar.add_working_hours(start, minutes / 60) == expected, (start, minutes)
        end = random_minute(rng, start, 30)
        assert calendar.working_seconds_between(start, end) == reference_between(working, start, end)


# Configuration


def test_the_defaults_are_seouls() -> None:
    config = CalendarConfig()
    assert config.country == "KR" and config.subdivision is None
    assert config.hours == dict.fromkeys(["mon", "tue", "wed", "thu", "fri"], "09:00-18:00")
    assert config.same_day_cutoff == time(18, 0)
    assert config.extra_holidays == [] and config.extra_working_days == []


@pytest.mark.parametrize(
    "config",
    [
        {"hours": {"mon": "00:00-24:00"}},
        {"hours": {"mon": "09:00-12:00,12:00-18:00"}},
        {"hours": {"mon": " 09:00 - 12:00 , 13:00-18:00 ", "sun": "9:30-11:00"}},
        {"country": "US", "subdivision": "CA"},
        {"country": "DE", "subdivision": "BY"},
        {"country": "KOR"},
        {"extra_holidays": ["2026-11-24"], "extra_working_days": ["2026-09-25"]},
        {"same_day_cutoff": "17:30"},
    ],
)
def test_valid_configs(config: dict[str, Any]) -> None:
    WorkingCalendar(CalendarConfig.model_validate(config), SEOUL)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"hours": {"mon": "9-18"}}, "hours.mon: '9-18' is not a range \"HH:MM-HH:MM\""),
        ({"hours": {"tue": "09:00~18:00"}}, "hours.tue: '09:00~18:00' is not a range"),
        ({"hours": {"wed": ""}}, "hours.wed: '' is not a range"),
        ({"hours": {"wed": "09:00-12:00,"}}, "hours.wed: '' is not a range"),
        ({"hours": {"thu": "09:60-18:00"}}, "hours.thu: 09:60 is not a time of day in '09:60-18:00'"),
        ({"hours": {"fri": "09:00-24:30"}}, "hours.fri: 24:30 is not a time of day in '09:00-24:30'"),
        ({"hours": {"fri": "09:00-25:00"}}, "hours.fri: 25:00 is not a time of day"),
        ({"hours": {"sat": "24:00-24:00"}}, "hours.sat: 24:00 is allowed only as an end in '24:00-24:00'"),
        ({"hours": {"mon": "18:00-09:00"}}, "hours.mon: '18:00-09:00' does not start before it ends"),
        ({"hours": {"mon": "09:00-09:00"}}, "hours.mon: '09:00-09:00' does not start before it ends"),
        (
            {"hours": {"tue": "09:00-13:00,12:00-18:00"}},
            "hours.tue: '12:00-18:00' overlaps or comes before '09:00-13:00'",
        ),
        (
            {"hours": {"sun": "13:00-18:00,09:00-12:00"}},
            "hours.sun: '09:00-12:00' overlaps or comes before '13:00-18:00'",
        ),
        ({"hours": {"monday": "09:00-18:00"}}, "hours: unknown weekday 'monday' (use mon, tue, wed"),
        ({"hours": {"Mon": "09:00-18:00"}}, "hours: unknown weekday 'Mon'"),
        ({"hours": {}}, "hours: no day has opening hours"),
        ({"country": "XX"}, "the holidays package does not know country 'XX'"),
        ({"country": "Korea"}, "the holidays package does not know country 'Korea' (use an ISO code"),
        ({"country": "kr"}, "the holidays package does not know country 'kr'"),
        ({"country": "US", "subdivision": "ZZ"}, "does not know country 'US' subdivision 'ZZ'"),
        ({"subdivision": "11"}, "does not know country 'KR' subdivision '11'"),
        (
            {"same_day_cutoff": 1080},
            'same_day_cutoff: got the number 1080; write the time quoted, e.g. "18:00"',
        ),
        (
            {"extra_holidays": ["2026-11-24"], "extra_working_days": ["2026-11-24"]},
            "2026-11-24: both in extra_holidays and in extra_working_days",
        ),
        ({"timezone": "Asia/Seoul"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_configs(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CalendarConfig.model_validate(config)
    assert message in str(caught.value)
