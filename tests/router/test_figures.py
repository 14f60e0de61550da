"""The city's figures as pure computation on tickets' facts: weeks in the city's zone, the same-day
rule's edges, on time (a late ticket stays late after its due time moved), working hours, any range."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from router.calendar import CalendarConfig, WorkingCalendar
from router.figures import Figures, Mean, Share, compute, week_start, weeks
from store.data import TicketFacts

SEOUL = ZoneInfo("Asia/Seoul")
BERLIN = ZoneInfo("Europe/Berlin")
CALENDAR = WorkingCalendar(CalendarConfig(), SEOUL)  # Mon-Fri 09:00-18:00, KR holidays, cutoff 18:00


def kst(day: str, time: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=SEOUL)


def facts(created: datetime, **fields: object) -> TicketFacts:
    base = TicketFacts(
        channel="sms",
        department="transport",
        created_at=created,
        first_response_at=None,
        due_at=None,
        resolved_at=None,
        forwarded_at=None,
        escalations=0,
        rating=None,
        rated_at=None,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


NOVEMBER = (kst("2026-11-01", "00:00"), kst("2026-12-01", "00:00"))
LATE_IN_DECEMBER = kst("2026-12-10", "12:00")


def november(*tickets: TicketFacts, now: datetime = LATE_IN_DECEMBER) -> Figures:
    start, end = NOVEMBER
    return compute(tickets, start=start, end=end, now=now, calendar=CALENDAR)


# --- weeks ----------------------------------------------------------------------------------------


def test_weeks_start_on_monday_midnight_in_the_citys_zone() -> None:
    sunday_night = kst("2026-11-22", "23:30")  # still Sunday in Seoul (14:30 UTC)
    monday_early = kst("2026-11-23", "00:30")  # Monday in Seoul, Sunday 15:30 in UTC
    assert week_start(sunday_night, SEOUL) == kst("2026-11-16", "00:00")
    assert week_start(monday_early.astimezone(UTC), SEOUL) == kst("2026-11-23", "00:00")
    ranges = weeks(monday_early, SEOUL, count=12)
    assert len(ranges) == 13
    assert ranges[0] == (kst("2026-11-23", "00:00"), kst("2026-11-30", "00:00"))
    assert ranges[1] == (kst("2026-11-16", "00:00"), kst("2026-11-23", "00:00"))
    assert ranges[-1][0] == kst("2026-08-31", "00:00")
    assert all(a[0] == b[1] for a, b in pairwise(ranges))  # no gap, no overlap


def test_a_week_with_a_daylight_saving_change_is_an_hour_short() -> None:
    (start, end), *_ = weeks(datetime(2026, 3, 29, 12, tzinfo=BERLIN), BERLIN, count=0)
    assert start == datetime(2026, 3, 23, tzinfo=BERLIN) and end == datetime(2026, 3, 30, tzinfo=BERLIN)
    assert end - start == timedelta(days=7) and end.astimezone(UTC) - start.astimezone(UTC) == timedelta(
        hours=167
    )


# --- the same-day rule -----------------------------------------------------------------------------


def test_the_same_day_share_counts_working_days_before_the_cutoff() -> None:
    monday = "2026-11-23"
    figures = november(
        facts(kst(monday, "10:00"), first_response_at=kst(monday, "17:59")),  # yes
        facts(kst(monday, "17:59"), first_response_at=kst(monday, "23:00")),  # yes: still that day
        facts(kst(monday, "11:00"), first_response_at=kst("2026-11-24", "09:00")),  # no: the next day
        facts(kst(monday, "12:00")),  # no: never answered, and its day is over
        facts(kst(monday, "18:00"), first_response_at=kst(monday, "18:30")),  # not counted: the cutoff
        facts(kst("2026-11-21", "10:00"), first_response_at=kst("2026-11-21", "10:01")),  # Saturday
    )
    assert figures.same_day == Share(2, 4)


def test_a_holiday_is_not_a_working_day_and_today_is_not_over() -> None:
    chuseok = kst("2026-09-25", "10:00")  # a public holiday in Korea
    start, end = kst("2026-09-01", "00:00"), kst("2026-10-01", "00:00")
    figures = compute([facts(chuseok)], start=start, end=end, now=LATE_IN_DECEMBER, calendar=CALENDAR)
    assert figures.same_day == Share(0, 0) and figures.same_day.value is None
    today = kst("2026-11-26", "09:00")
    waiting = facts(today)
    assert november(waiting, now=kst("2026-11-26", "15:00")).same_day == Share(0, 0)
    assert november(waiting, now=kst("2026-11-27", "08:00")).same_day == Share(0, 1)


# --- on time, handling time, satisfaction, contacts --------------------------------------------------


def test_on_time_needs_the_due_time_kept_and_never_a_late_escalation() -> None:
    created = kst("2026-11-23", "10:00")
    due = kst("2026-11-24", "10:00")
    figures = november(
        facts(created, due_at=due, resolved_at=kst("2026-11-24", "10:00")),  # on time (at the minute)
        facts(created, due_at=due, resolved_at=kst("2026-11-24", "10:01")),  # late
        # Late once: the sweep moved its due time, so it looks on time by the new one.
        facts(
            created, due_at=kst("2026-11-25", "12:00"), resolved_at=kst("2026-11-25", "11:00"), escalations=1
        ),
        facts(created, resolved_at=kst("2026-11-24", "10:00")),  # no due time: not counted
        facts(created, department="welfare", due_at=due, resolved_at=kst("2026-11-23", "15:00")),
        facts(created, due_at=due, resolved_at=kst("2026-12-01", "00:00")),  # resolved after the range
    )
    assert figures.on_time == {"transport": Share(1, 3), "welfare": Share(1, 1)}
    assert figures.on_time_all == Share(2, 4)


def test_handling_time_is_working_hours_from_forwarding_to_resolution() -> None:
    friday = kst("2026-11-20", "16:00")
    figures = november(
        # Friday 16:00 -> Monday 11:00: two hours on Friday, two on Monday; the weekend is not work.
        facts(friday, forwarded_at=friday, resolved_at=kst("2026-11-23", "11:00")),
        # Forwarded after hours (19:00): the clock starts at 09:00 the next working day.
        facts(friday, forwarded_at=kst("2026-11-23", "19:00"), resolved_at=kst("2026-11-24", "15:00")),
        facts(friday, resolved_at=kst("2026-11-24", "15:00")),  # answered without a department: none
        facts(friday, department=None, forwarded_at=friday, resolved_at=kst("2026-11-20", "17:00")),
    )
    assert figures.handling_hours == {"transport": Mean(10.0, 2), "": Mean(1.0, 1)}
    assert figures.handling_all.value == 11 / 3


def test_contacts_and_satisfaction_of_any_range() -> None:
    tickets = [
        facts(kst("2026-10-31", "23:59"), channel="sms", rating=1, rated_at=kst("2026-11-01", "00:00")),
        facts(kst("2026-11-01", "00:00"), channel="sms", rating=5, rated_at=kst("2026-11-02", "09:00")),
        facts(kst("2026-11-15", "12:00"), channel="kakao", rating=4, rated_at=kst("2026-12-01", "00:00")),
        facts(kst("2026-11-30", "23:59"), channel="kakao"),
    ]
    figures = november(*tickets)
    assert figures.contacts == {"sms": 1, "kakao": 2}
    assert figures.total_contacts == 3
    # Ratings count where they were given: the October ticket's on November 1, not the late one's.
    assert figures.satisfaction == Mean(6.0, 2) and figures.satisfaction.value == 3.0
