"""The public status pages in a real browser (Debian's Chromium, headless) at a phone's width, in
Korean and English, against the whole shipped city with a few weeks of tickets. Screenshots go to
the folder named by INTAKE_SCREENSHOTS (default: the test's temporary folder), for people to look at.

Skips when Chromium is not installed, unless INTAKE_REQUIRE_BROWSER=1 (CI) makes it required.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from bot import build, make_app
from channels.memory import MemoryChannel
from router import Staff
from tests.bot.test_browser import CHROMIUM, CHROMIUM_ARGS  # skips this module too without Chromium
from tests.conftest import ROOT, FakeClock, shipped_config

from playwright.async_api import Browser, async_playwright, expect  # isort: skip

SEOUL = ZoneInfo("Asia/Seoul")
KIM = Staff(id="cli:kim", name="Kim Minji")
PHONE = {"width": 360, "height": 740}
# What the citizens wrote: none of it may be on a page.
PRIVATE = ("Hong Gildong", "010-9876-5432", "Sejong-daero 110", "flickering")


def kst(day: str, time: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=SEOUL)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("INTAKE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """The shipped city with three weeks of tickets; (its URL, a ticket with a public note)."""
    clock = FakeClock()
    citizen = MemoryChannel()
    bot = await build(shipped_config(tmp_path), base_dir=ROOT, channels=[citizen], webchat=False, clock=clock)
    async with bot.running(sweeps=False):

        async def push(at: datetime, text: str, sender: str) -> str:
            clock.now = at
            receipt = await citizen.push(text, sender=sender)
            assert receipt.reference
            return receipt.reference

        for week, (monday, wednesday, rating) in enumerate(
            [("2026-11-09", "2026-11-11", "3"), ("2026-11-16", "2026-11-18", "5")]
        ):
            await push(kst(monday, "10:00"), "대형 폐기물은 어떻게 버리나요?", f"faq-{week}")
            light = await push(kst(monday, "11:00"), "가로등이 꺼졌어요", f"light-{week}")
            clock.now = kst(wednesday, "15:00")
            await bot.desk.resolve(light, staff=KIM)
            await push(clock.now, rating, f"light-{week}")
        reference = await push(
            kst("2026-11-23", "10:00"),
            "My name is Hong Gildong, 010-9876-5432. The streetlight at Sejong-daero 110 is flickering",
            "+821098765432",
        )
        litter = await push(kst("2026-11-23", "11:00"), "가로등 옆에 쓰레기가 쌓였어요", "litter")
        await bot.desk.reassign(litter, "environment", reason="litter, not the lamp", staff=KIM)
        clock.now = kst("2026-11-23", "14:00")
        await bot.desk.note(reference, "수요일 오전에 보수 기사가 방문합니다.", staff=KIM, public=True)
        await bot.desk.note(reference, "민원인 통화 완료", staff=KIM)
        clock.now = kst("2026-11-24", "09:30")
        runner = web.AppRunner(make_app(bot))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            yield f"http://127.0.0.1:{runner.addresses[0][1]}", reference
        finally:
            await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def fits(page: object, width: int) -> None:
    """Nothing wider than the screen: no sideways scrolling on a phone."""
    scroll = await page.evaluate("document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    assert scroll <= width, f"the page is {scroll} px wide on a {width} px screen"


@pytest.mark.parametrize(
    ("locale", "texts"),
    [
        (
            "ko-KR",
            {
                "h1": "민원 처리 현황",
                "summary": [
                    "이번 주 (11월 23일부터)",
                    "당일 답변",
                    "기한 내 처리",
                    "평균 처리 시간",
                    "만족도",
                ],
                "open": ["교통도로과", "환경청소과"],
                "ticket": ["담당 부서 배정", "교통도로과", "2026년 11월 23일 (월) 10:00", "아직 아님"],
            },
        ),
        (
            "en-US",
            {
                "h1": "Public status",
                "summary": [
                    "This week (from Nov 23)",
                    "Answered the same day",
                    "Resolved on time",
                    "Satisfaction",
                ],
                "open": ["Transport and Roads", "Environment and Waste"],
                "ticket": [
                    "sent to the department",
                    "Transport and Roads",
                    "Mon, Nov 23, 2026 10:00",
                    "Not yet",
                ],
            },
        ),
    ],
)
async def test_the_status_pages_on_a_phone(
    served: tuple[str, str], browser: Browser, shots: Path, locale: str, texts: dict[str, object]
) -> None:
    url, reference = served
    language = locale[:2]
    context = await browser.new_context(viewport=PHONE, locale=locale, java_script_enabled=False)
    page = await context.new_page()

    await page.goto(f"{url}/status")  # the language comes from the browser's Accept-Language
    await expect(page.locator("h1")).to_have_text(str(texts["h1"]))
    assert await page.locator("html").get_attribute("lang") == language
    for text in texts["summary"]:  # type: ignore[attr-defined]
        await expect(page.locator("#summary")).to_contain_text(text)
    for text in texts["open"]:  # type: ignore[attr-defined]
        await expect(page.locator("#open")).to_contain_text(text)
    await expect(page.locator("#weeks tbody tr")).to_have_count(13)
    await fits(page, PHONE["width"])
    await page.screenshot(path=str(shots / f"status-{language}.png"), full_page=True)

    # The lookup form takes the citizen to their ticket, without JavaScript.
    await page.fill("#ticket", reference)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{url}/status/{reference}?lang={language}")
    for text in texts["ticket"]:  # type: ignore[attr-defined]
        await expect(page.locator("#ticket")).to_contain_text(text)
    await expect(page.locator("#notes")).to_contain_text("수요일 오전에 보수 기사가 방문합니다.")
    body = await page.locator("body").inner_text()
    assert "민원인 통화 완료" not in body and not any(secret in body for secret in PRIVATE)
    await fits(page, PHONE["width"])
    await page.screenshot(path=str(shots / f"ticket-{language}.png"), full_page=True)

    # The oldest phones are 320 px wide: still no sideways scrolling.
    await page.set_viewport_size({"width": 320, "height": 640})
    await page.goto(f"{url}/status?lang={language}")
    await fits(page, 320)
    await page.screenshot(path=str(shots / f"status-{language}-320.png"), full_page=True)
    await context.close()


async def test_a_sensitive_or_unknown_ticket_shows_the_same_not_found_page(
    served: tuple[str, str], browser: Browser, shots: Path
) -> None:
    url, _ = served
    context = await browser.new_context(viewport=PHONE, locale="en-US", java_script_enabled=False)
    page = await context.new_page()
    response = await page.goto(f"{url}/status/2026-999999")
    assert response is not None and response.status == 404
    await expect(page.locator("h1")).to_have_text("Not found")
    await page.screenshot(path=str(shots / "not-found-en.png"), full_page=True)
    await context.close()
