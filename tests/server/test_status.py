"""The public status pages through the whole bot's HTTP app, on SQLite and PostgreSQL: the city's
figures on a small constructed month, the language a visitor gets, a ticket's page with its public
notes, sensitive = unknown = malformed, and no citizen's words, name, number or address anywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

import bot as bot_module
from channels.base import Attachment
from channels.memory import MemoryChannel
from router import Staff
from store import Contact, Database, data
from tests.conftest import ROOT, FakeClock, config_for_tests

SEOUL = ZoneInfo("Asia/Seoul")
KIM = Staff(id="cli:kim", name="Kim Minji")
LANGUAGES = ("ko", "en", "zh", "ja", "vi", "mn")
STREETLIGHT = "The streetlight on my corner is out"
SOFA = "How do I throw away a sofa?"


def kst(day: str, time: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=SEOUL)


@dataclass
class City:
    bot: bot_module.Bot
    citizen: MemoryChannel
    client: TestClient
    clock: FakeClock

    async def push(self, at: datetime, text: str, sender: str, **extra: object) -> str:
        self.clock.now = at
        receipt = await self.citizen.push(text, sender=sender, **extra)  # type: ignore[arg-type]
        assert receipt.reference, text
        return receipt.reference

    async def get(self, path: str, language: str | None = None) -> tuple[int, str, dict[str, str]]:
        headers = {"Accept-Language": language} if language else {}
        response = await self.client.get(path, headers=headers, allow_redirects=False)
        return response.status, await response.text(), dict(response.headers)


@pytest.fixture
async def city(database: Database, tmp_path: Path, clock: FakeClock) -> AsyncIterator[City]:
    citizen = MemoryChannel()
    bot = await bot_module.build(
        config_for_tests(tmp_path), base_dir=ROOT, channels=[citizen], webchat=False, db=database, clock=clock
    )
    async with bot.running(sweeps=False), TestClient(TestServer(bot_module.make_app(bot))) as client:
        yield City(bot, citizen, client, clock)


class Tables(HTMLParser):
    """Each table's rows as lists of cell texts, by the table's id; and all visible text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.text: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._in_style = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")
        elif tag == "style":
            self._in_style = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._table is not None and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "style":
            self._in_style = False

    def handle_data(self, text: str) -> None:
        if self._cell is not None:
            self._cell.append(text)
        if not self._in_style:
            self.text.append(text)


# --- the figures ---------------------------------------------------------------------------------


async def constructed_month(city: City) -> dict[str, str]:
    """Three weeks of tickets at known times (KST; November 2026 has no public holiday in Korea):

    week of Nov 9:  A Mon 10:00 FAQ answer at once; B Mon 11:00 streetlight, resolved Tue 14:00
                    (due Thu 11:00: on time, 12 working hours), rated 5; C Mon 19:00 (after the
                    cutoff), resolved the next Monday 10:00 (due Thu 18:00: late, 37 working hours).
    week of Nov 16: C resolved and rated 2; D Wed 17:30 FAQ answer; E Sat 10:00 streetlight, open,
                    due Wed Nov 25 18:00 (overdue by Thursday).
    week of Nov 23: F Mon 10:00 litter (environment), a staff reply 16:00, resolved Tue 11:00 (due
                    Wed 10:00: on time, 10 working hours), rated 4; G Thu 14:00 streetlight, open;
                    H Thu 09:30 a sensitive report: in no figure.
    The page is read on Thursday Nov 26 at 15:00."""
    refs = {
        "A": await city.push(kst("2026-11-09", "10:00"), SOFA, "a"),
        "B": await city.push(kst("2026-11-09", "11:00"), STREETLIGHT, "b"),
        "C": await city.push(kst("2026-11-09", "19:00"), "가로등이 꺼졌어요", "c"),
    }
    city.clock.now = kst("2026-11-10", "14:00")
    await city.bot.desk.resolve(refs["B"], "Fixed", staff=KIM)
    await city.push(kst("2026-11-10", "14:05"), "5", "b")
    city.clock.now = kst("2026-11-16", "10:00")
    await city.bot.desk.resolve(refs["C"], staff=KIM)
    await city.push(kst("2026-11-16", "10:05"), "2", "c")
    refs["D"] = await city.push(kst("2026-11-18", "17:30"), SOFA, "d")
    refs["E"] = await city.push(kst("2026-11-21", "10:00"), "가로등이 꺼졌어요", "e")
    refs["F"] = await city.push(kst("2026-11-23", "10:00"), "쓰레기 무단투기 신고합니다", "f")
    city.clock.now = kst("2026-11-23", "16:00")
    await city.bot.desk.reply(refs["F"], "We will look today", staff=KIM)
    city.clock.now = kst("2026-11-24", "11:00")
    await city.bot.desk.resolve(refs["F"], staff=KIM)
    await city.push(kst("2026-11-24", "11:05"), "4", "f")
    refs["H"] = await city.push(kst("2026-11-26", "09:30"), "구청 직원이 뇌물을 요구했습니다", "h")
    refs["G"] = await city.push(kst("2026-11-26", "14:00"), STREETLIGHT, "g")
    city.clock.now = kst("2026-11-26", "15:00")
    async with city.bot.db.session() as session:
        for key in "ABCDEFG":
            ticket = await data.get_ticket(session, reference=refs[key])
            assert ticket is not None and not ticket.sensitive, key
        sensitive = await data.get_ticket(session, reference=refs["H"])
        assert sensitive is not None and sensitive.sensitive
    return refs


async def test_the_figures_of_a_constructed_month(city: City) -> None:
    await constructed_month(city)
    status, html, headers = await city.get("/status?lang=en")
    assert status == 200
    assert headers["Cache-Control"] == "public, max-age=60" and headers["Vary"] == "Accept-Language"
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    tables = Tables(html).tables
    assert tables["summary"] == [
        ["", "This week (from Nov 23)", "Past 12 weeks"],
        ["Contacts", "2", "5"],
        [
            "Answered the same day of questions and reports received on a working day before 18:00, "
            "the share answered that day",
            "100%",
            "67%",
        ],
        ["Resolved on time", "100%", "50%"],
        [
            "Mean handling time from reaching a department to being resolved, in working hours",
            "10.0 h",
            "24.5 h",
        ],
        ["Satisfaction", "4.0 / 5 (1 rated)", "3.5 / 5 (2 rated)"],
    ]
    assert tables["channels"] == [["Channel", "This week", "Past 12 weeks"], ["memory", "2", "5"]]
    assert tables["on-time"] == [
        ["Department", "This week", "Past 12 weeks"],
        ["Transport and Roads", "–", "50%"],
        ["Environment and Waste", "100%", "–"],
    ]
    assert tables["handling"] == [
        ["Department", "This week", "Past 12 weeks"],
        ["Transport and Roads", "–", "24.5 h"],
        ["Environment and Waste", "10.0 h", "–"],
    ]
    # Open now: E (overdue since Wednesday 18:00) and G; the sensitive report is not counted.
    assert tables["open"] == [["Department", "Open", "Overdue"], ["Transport and Roads", "2", "1"]]
    weeks = tables["weeks"]
    assert weeks[0] == ["Week", "Contacts", "Answered the same day", "Resolved on time",
                        "Mean handling time", "Satisfaction"]  # fmt: skip
    assert weeks[1:4] == [
        ["Nov 23", "2", "100%", "100%", "10.0", "4.0"],
        ["Nov 16", "2", "100%", "0%", "37.0", "2.0"],
        ["Nov 9", "3", "50%", "100%", "12.0", "5.0"],
    ]
    assert len(weeks) == 1 + 13 and weeks[-1] == ["Aug 31", "0", "–", "–", "–", "–"]


async def test_the_figures_are_kept_a_minute(city: City) -> None:
    _, html, _ = await city.get("/status?lang=en")
    assert Tables(html).tables["summary"][1] == ["Contacts", "0", "0"]
    await city.push(city.clock.now, STREETLIGHT, "late-comer")
    assert Tables((await city.get("/status?lang=en"))[1]).tables["summary"][1] == ["Contacts", "0", "0"]
    city.clock.now = city.clock.now.replace(minute=city.clock.now.minute + 1)
    assert Tables((await city.get("/status?lang=en"))[1]).tables["summary"][1] == ["Contacts", "1", "0"]


# --- languages -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("en-US,en;q=0.9", "en"),
        ("fr-FR,fr;q=0.9,ja;q=0.8,en;q=0.7", "ja"),  # the first of ours it names
        ("en;q=0.5, vi", "vi"),  # by q-value, not by position
        ("zh-TW", "zh"),
        ("mn-MN,ko;q=0", "mn"),
        ("ko;q=0, en;q=0.1", "en"),  # q=0: not this one
        ("fr, de", "ko"),  # none of ours: the city's language
        ("", "ko"),
    ],
)
async def test_the_language_follows_accept_language(city: City, header: str, expected: str) -> None:
    status, html, headers = await city.get("/status", header)
    assert status == 200 and headers["Content-Language"] == expected
    assert f'<html lang="{expected}">' in html


async def test_lang_in_the_query_wins_and_the_switcher_links_each_language(city: City) -> None:
    names = {
        "ko": "한국어",
        "en": "English",
        "zh": "中文",
        "ja": "日本語",
        "vi": "Tiếng Việt",
        "mn": "Монгол",
    }
    titles = {"ko": "민원 처리 현황", "en": "Public status", "ja": "対応状況", "mn": "Өргөдлийн явц"}
    for language in LANGUAGES:
        status, html, _ = await city.get(f"/status?lang={language}", "en-US")
        assert status == 200 and f'<html lang="{language}">' in html
        if language in titles:
            assert f"<h1>{titles[language]}</h1>" in html
        for code, name in names.items():
            current = ' aria-current="page"' if code == language else ""
            assert (
                f'<a href="/status?lang={code}" hreflang="{code}" lang="{code}"{current}>{name}</a>' in html
            )


async def test_an_unknown_language_is_a_clear_400(city: City) -> None:
    status, text, _ = await city.get("/status?lang=fr")
    assert status == 400 and text == "unknown language 'fr': use one of ko, en, zh, ja, vi, mn"


async def test_the_lookup_form_leads_to_the_tickets_page(city: City) -> None:
    status, _, headers = await city.get("/status?ticket=+2026-000001+&lang=ja")
    assert status == 303 and headers["Location"] == "/status/2026-000001?lang=ja"
    status, _, headers = await city.get("/status?ticket=<x>/../")
    assert status == 303 and headers["Location"] == "/status/%3Cx%3E%2F..%2F"
    assert (await city.get("/status/"))[0] == 200


# --- a ticket's page ----------------------------------------------------------------------------------


async def test_a_tickets_page_shows_its_progress_and_public_notes_only(city: City) -> None:
    reference = await city.push(kst("2026-11-23", "10:00"), STREETLIGHT, "alice")
    await city.bot.desk.note(
        reference, "Crew booked for Wednesday\nthanks for waiting", staff=KIM, public=True
    )
    await city.bot.desk.note(reference, "the caller sounded upset", staff=KIM)
    status, html, headers = await city.get(f"/status/{reference}", "ko-KR,ko;q=0.9")
    assert status == 200 and headers["Cache-Control"] == "no-cache"
    page = Tables(html)
    assert page.tables["ticket"] == [
        ["상태", "담당 부서 배정"],
        ["부서", "교통도로과"],
        ["접수", "2026년 11월 23일 (월) 10:00"],
        ["처리 예정", "2026년 11월 26일 (목) 10:00"],
        ["처리 완료", "아직 아님"],
    ]
    assert "Crew booked for Wednesday\nthanks for waiting" in html
    assert "upset" not in html and "Kim" not in html
    assert f"<h1>접수번호 {reference}</h1>" in html

    city.clock.now = kst("2026-11-24", "15:30")
    await city.bot.desk.resolve(reference, "New lamp fitted", staff=KIM)
    status, html, _ = await city.get(f"/status/{reference}?lang=en")
    assert Tables(html).tables["ticket"] == [
        ["Status", "resolved"],
        ["Department", "Transport and Roads"],
        ["Received", "Mon, Nov 23, 2026 10:00"],
        ["Due", "Thu, Nov 26, 2026 10:00"],
        ["Resolved", "Tue, Nov 24, 2026 15:30"],
    ]
    assert "New lamp fitted" not in html  # what staff told the citizen is the citizen's
    assert f'<a href="/status/{reference}?lang=vi" hreflang="vi" lang="vi">Tiếng Việt</a>' in html


async def test_sensitive_unknown_and_malformed_references_look_the_same(city: City) -> None:
    sensitive = await city.push(kst("2026-11-23", "10:00"), "구청 직원이 뇌물을 요구했습니다", "whistle")
    await city.bot.desk.note(sensitive, "Under investigation", staff=KIM, public=True)
    for language in (None, "en", "ko"):
        answers = [
            await city.get(path, language)
            for path in (
                f"/status/{sensitive}",
                "/status/2026-999999",
                "/status/not-a-ticket",
                "/status/%3Cscript%3E",
                "/status/2026-1",
            )
        ]
        statuses = {status for status, _, _ in answers}
        bodies = {body for _, body, _ in answers}
        headers = {tuple(sorted((k, v) for k, v in h.items() if k != "Date")) for _, _, h in answers}
        assert statuses == {404} and len(bodies) == 1 and len(headers) == 1
        assert "Under investigation" not in bodies.pop()


async def test_the_reference_lookup_names_the_public_page_but_not_for_a_sensitive_ticket(city: City) -> None:
    reference = await city.push(kst("2026-11-23", "10:00"), "가로등이 꺼졌어요", "kim")
    await city.citizen.pop()
    await city.push(kst("2026-11-23", "10:05"), f"{reference} 처리 상황", "kim")
    told = (await city.citizen.pop()).text
    assert told == (
        f"접수번호 {reference}: 담당 부서 배정. 처리 예정: 11월 26일 (목) 10:00.\n"
        f"진행 상황: http://localhost:8080/status/{reference}"
    )
    secret = await city.push(kst("2026-11-23", "10:10"), "구청 직원이 뇌물을 요구했습니다", "lee")
    await city.citizen.pop()
    await city.push(kst("2026-11-23", "10:15"), f"{secret} 처리 상황", "lee")
    told = (await city.citizen.pop()).text
    assert "/status/" not in told and "\n" not in told and secret in told


# --- nothing personal ------------------------------------------------------------------------------


async def test_no_citizen_words_name_number_or_address_appear_in_any_language(city: City) -> None:
    name, phone, address, words = "Hong Gildong", "010-9876-5432", "Sejong-daero 110", "flickering"
    sender = "+821098765432"
    reference = await city.push(
        kst("2026-11-23", "10:00"),
        f"My name is {name}, {phone}. The streetlight at {address} is {words} all night",
        sender,
        attachments=(
            Attachment(url="https://media.example/photo-of-my-door.jpg", content_type="image/jpeg"),
        ),
    )
    async with city.bot.db.transaction() as session:
        ticket = await data.get_ticket(session, reference=reference)
        assert ticket is not None
        contact = await session.get(Contact, ticket.contact_id)
        assert contact is not None
        contact.display_name = name
        session.add(contact)
    await city.bot.desk.note(reference, "crew called back", staff=KIM)
    city.clock.now = kst("2026-11-23", "15:00")
    await city.bot.desk.resolve(reference, f"Fixed near {address}", staff=KIM)
    await city.push(kst("2026-11-23", "15:05"), "5", sender)
    await city.push(kst("2026-11-23", "15:06"), f"Thanks, {name} from {address}", sender)
    city.clock.now = kst("2026-11-23", "16:00")
    forbidden = [name, "Gildong", phone, "9876", "5432", sender, address, "Sejong", words, "photo-of-my-door",
                 "media.example", "crew called back", "Kim Minji", "Thanks"]  # fmt: skip
    pages = [f"/status?lang={language}" for language in LANGUAGES]
    pages += [f"/status/{reference}?lang={language}" for language in LANGUAGES]
    for path in pages:
        status, html, _ = await city.get(path)
        assert status == 200, path
        for secret in forbidden:
            assert secret not in html, (path, secret)
    # The pages did show this ticket: it is counted, and its page is there.
    summary = Tables((await city.get("/status?lang=en"))[1]).tables["summary"]
    assert summary[1] == ["Contacts", "1", "0"] and summary[5][1] == "5.0 / 5 (1 rated)"
