"""The monthly report: a small November built through the bot (answers, forwards resolved on time and
late, ratings with comments that hold a name, a phone number, an e-mail address and a street address),
its files and figures, that none of the citizens' personal words appears in them, and that the server
posts it once, on the first working day of the next month, and not again after a restart."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from html import unescape as html_unescape
from pathlib import Path
from typing import ClassVar

import pytest

from bot import Bot, build
from channels.base import OutboundMessage
from channels.memory import MemoryChannel
from router import Staff
from router.report import MonthlyPoster
from router.report_figures import Month
from store import Database
from tests.conftest import ROOT, FakeClock, all_sent, config_for_tests, outbox_of
from tests.waiting import until


class Desk(MemoryChannel):
    name: ClassVar[str] = "slack"


City = tuple[Bot, MemoryChannel, Desk, FakeClock]
KIM = Staff(id="cli:kim", name="Kim Minji")
NOVEMBER = Month(2026, 11)

# What must never appear in the report: names, numbers, addresses, whole texts.
STREETLIGHTS = [
    ("citizen-1", "The streetlight on Main Street is out again, dark at night. Jane Doe 010-5555-0142"),
    ("citizen-2", "streetlight out on Main Street, so dark at night"),
    ("citizen-3", "The streetlight at Huam-dong 406 is out, dark at night. jdoe@example.com"),
]
COMMENTS = [
    ("citizen-1", "5", "very fast and friendly service, thank you. Jane Doe 010-5555-0142"),
    ("citizen-2", "4", "fast and friendly service"),
    ("citizen-3", "2", "friendly and fast service, thanks. Mina Park, Huam-dong 406, +82 10 5555 0199"),
]
SECRETS = [
    "Jane",
    "Doe",
    "Mina",
    "Park",
    "Huam",
    "406",
    "0142",
    "0199",
    "5555",
    "jdoe",
    "example.com",
    *(text for _, text in STREETLIGHTS),
    *(text for _, _, text in COMMENTS),
]


def kst(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}+09:00").astimezone(UTC)


@pytest.fixture
async def city(database: Database, tmp_path: Path) -> AsyncIterator[City]:
    config = config_for_tests(tmp_path)
    router = config.router
    desk = router.desk.model_copy(update={"alerts_inbox": "#alerts"})
    # 1 December 2026 (a Tuesday) a city holiday: the first working day is Wednesday the 2nd.
    calendar = router.calendar.model_copy(update={"extra_holidays": [date(2026, 12, 1)]})
    report = router.report.model_copy(update={"channel": "#reports", "folder": tmp_path / "reports"})
    router = router.model_copy(update={"desk": desk, "calendar": calendar, "report": report})
    config = config.model_copy(update={"router": router})
    clock = FakeClock(kst("2026-11-23", "10:00"))
    citizen, staff_desk = MemoryChannel(), Desk()
    bot = await build(
        config, base_dir=ROOT, channels=[citizen, staff_desk], webchat=False, db=database, clock=clock
    )
    async with bot.running(sweeps=False):
        yield bot, citizen, staff_desk, clock


async def say(city: City, sender: str, text: str) -> str:
    bot, citizen, _, clock = city
    receipt = await citizen.push(text, sender=sender, received_at=clock.now)
    while await bot.dispatcher.run_once():
        pass
    assert receipt.reference
    return receipt.reference


def reports(desk: Desk) -> list[OutboundMessage]:
    return [m for m in desk.sent if m.recipient == "#reports"]


async def november(city: City) -> None:
    """Three FAQ answers, three streetlight reports (two resolved on time, one late), three ratings."""
    bot, _, _, clock = city
    await say(city, "citizen-4", "How do I throw away a sofa?")
    await say(city, "citizen-5", "How do I throw away a sofa?")
    await say(city, "citizen-6", "여권 만들려면")
    references = [await say(city, sender, text) for sender, text in STREETLIGHTS]
    clock.now = kst("2026-11-23", "11:00")
    for reference in references[:2]:
        await bot.desk.resolve(reference, "The lamp was replaced.", staff=KIM)
    clock.now = kst("2026-11-27", "12:00")  # long past the third one's due time
    result = await bot.sweeper.sweep_once()
    assert result.escalated == 1
    await bot.desk.resolve(references[2], "The lamp was replaced.", staff=KIM)
    for sender, rating, comment in COMMENTS:
        await say(city, sender, rating)
        await say(city, sender, comment)


async def test_the_report_shows_the_months_figures_and_no_citizens_words(city: City, tmp_path: Path) -> None:
    bot, _, _, _ = city
    await november(city)
    poster = bot.sweeper.report
    assert poster is not None
    report = await poster.maker.figures(NOVEMBER)
    assert report.figures.contacts == {"memory": 6}
    assert report.figures.on_time["transport"].hits == 2 and report.figures.on_time["transport"].total == 3
    assert report.figures.satisfaction.count == 3 and report.figures.satisfaction.value == pytest.approx(
        11 / 3
    )
    assert report.ratings == {1: 0, 2: 1, 3: 0, 4: 1, 5: 1}
    assert report.answered == [("bulky-waste", 2), ("passport", 1)]
    assert sum(report.by_day[date(2026, 11, 23)].values()) == 6 and len(report.by_day) == 30
    [asked] = report.asked
    assert (asked.size, asked.people) == (3, 3) and "streetlight" in asked.terms
    [theme] = report.comments
    assert (theme.size, theme.people) == (3, 3)
    assert {"fast", "friendly", "service"} <= set(theme.terms)
    # The distinctive word two people used ("thank") and everything one person wrote stays out.
    assert not {"thank", "jane", "doe", "mina", "park", "huam"} & {t.casefold() for t in theme.terms}

    folder = tmp_path / "out"
    rendered = await poster.maker.write(NOVEMBER, folder, svg=True)
    html = rendered.html.read_text(encoding="utf-8")
    for section in ("summary", "contacts", "asked", "departments", "satisfaction", "missed"):
        assert f'<section id="{section}">' in html
    assert "66.7%" in html and "3.7" in html  # transport on time, the mean rating
    assert html.count("data:image/png;base64,") >= 4
    assert rendered.pdf.read_bytes().startswith(b"%PDF-")
    pages = sorted(p.name for p in folder.glob("page-*.png"))
    assert pages == [
        "page-1-summary.png",
        "page-2-contacts.png",
        "page-3-asked.png",
        "page-4-departments.png",
        "page-5-satisfaction.png",
        "page-6-missed.png",
    ]
    for png in folder.glob("*.png"):
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert f"/Count {len(pages)}".encode() in rendered.pdf.read_bytes()  # a page per section
    # The PDF's text cannot be searched as bytes: matplotlib writes it as kerned runs of glyphs
    # ("[ (s) 0.68 (t) ... ] TJ"), compressed or not. The same page figures saved as SVG keep their
    # text as <text> elements: those are searched instead, with the HTML.
    svg = "\n".join(
        html_unescape(text)
        for page in sorted(folder.glob("page-*.svg"))
        for text in re.findall(r"<text\b[^>]*>(.*?)</text>", page.read_text(encoding="utf-8"), re.DOTALL)
    )
    # The charts' base64 could hold any three letters by chance: only the words are searched.
    html = html_unescape(re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html))
    # The search can find words: shared terms are in both.
    for shown in ("streetlight", "friendly", "service"):
        assert shown in html and shown in svg, shown
    for secret in SECRETS:
        assert secret not in html, secret
        assert secret not in svg, secret
        assert secret not in rendered.summary, secret


async def test_posted_once_on_the_first_working_day_and_not_again_after_a_restart(city: City) -> None:
    bot, _, desk, clock = city
    await november(city)
    poster = bot.sweeper.report
    assert poster is not None
    for moment in (kst("2026-12-01", "10:00"), kst("2026-12-02", "08:59")):  # a holiday; before 09:00
        clock.now = moment
        assert await poster.post_if_due() is None
    clock.now = kst("2026-12-02", "09:10")
    assert await poster.post_if_due() == NOVEMBER
    await until(lambda: reports(desk))  # the running dispatcher delivers it
    [post] = reports(desk)
    assert post.recipient == "#reports"
    assert "2026년 11월" in post.text and "report.pdf" in post.text
    assert (poster.folder / "2026-11" / "report.html").exists()
    for secret in SECRETS:
        assert secret not in post.text, secret

    assert await poster.post_if_due() is None
    clock.now = kst("2026-12-20", "15:00")
    restarted = MonthlyPoster(poster.maker, bot.lifecycle, poster.config, folder=poster.folder)
    assert await restarted.post_if_due() is None
    await until(lambda: all_sent(bot))  # the post's row is marked sent just after the desk has it
    assert len(reports(desk)) == 1
    # January: the 1st is a holiday and the 2nd and 3rd a weekend, so Monday the 4th posts December.
    clock.now = kst("2027-01-02", "10:00")
    assert await restarted.post_if_due() is None
    clock.now = kst("2027-01-04", "09:00")
    assert await restarted.post_if_due() == Month(2026, 12)


async def test_a_new_install_posts_no_report_of_the_month_before_it(city: City) -> None:
    bot, _, desk, clock = city
    poster = bot.sweeper.report
    assert poster is not None
    clock.now = kst("2026-12-02", "09:10")
    assert await poster.post_if_due() is None
    clock.now = kst("2026-12-20", "15:00")
    assert await poster.post_if_due() is None  # decided once: not caught up later in the month
    assert not (poster.folder / "2026-11").exists()
    assert await outbox_of(bot) == [] and reports(desk) == []


def test_a_month_is_its_days_in_the_citys_zone() -> None:
    from zoneinfo import ZoneInfo

    seoul = ZoneInfo("Asia/Seoul")
    start, end = NOVEMBER.range(seoul)
    assert start == kst("2026-11-01", "00:00") and end == kst("2026-12-01", "00:00")
    assert Month.parse("2027-01").previous() == Month(2026, 12) and Month(2026, 12).next() == Month(2027, 1)
    assert Month.of(kst("2026-12-01", "00:30"), seoul) == Month(2026, 12)  # still 30 Nov in UTC
    with pytest.raises(ValueError, match="expected YYYY-MM"):
        Month.parse("2026-13")
    assert timedelta(days=len(NOVEMBER.days())) == end - start
