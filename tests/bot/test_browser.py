"""The web chat in a real browser (Debian's Chromium, headless), against the whole shipped city.

Skips when Chromium is not installed, unless INTAKE_REQUIRE_BROWSER=1 (CI) makes it required.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot import Bot, build, make_app
from router import Staff
from tests.conftest import ROOT, shipped_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Without the background-networking flags Chromium keeps trying to reach Google, which this
# machine's closed network refuses; none of them changes what the page does.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if CHROMIUM is None:
    if os.environ.get("INTAKE_REQUIRE_BROWSER") == "1":
        raise RuntimeError(
            "INTAKE_REQUIRE_BROWSER=1 but chromium is not installed (apt-get install chromium)"
        )
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

from playwright.async_api import Page, async_playwright, expect  # noqa: E402


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Bot, str]]:
    bot = await build(shipped_config(tmp_path), base_dir=ROOT)
    async with bot.running():
        runner = web.AppRunner(make_app(bot))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            yield bot, f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 360, "height": 740}, locale="en-US")
        yield await context.new_page()
        await browser.close()


async def ask(page: Page, text: str) -> None:
    await page.fill("#text", text)
    await page.press("#text", "Enter")


async def test_a_citizen_asks_reports_and_hears_back_from_staff(
    served: tuple[Bot, str], page: Page, tmp_path: Path
) -> None:
    bot, url = served
    await page.goto(f"{url}/chat")
    log = page.locator("#log")

    await ask(page, "How do I throw away a sofa?")
    await expect(log).to_contain_text("Register the item on your district office website", timeout=10_000)

    await ask(page, "The streetlight in front of my house is broken")
    await expect(log).to_contain_text(
        "Ticket 2026-000002: sent to Transport and Roads. Expected by", timeout=10_000
    )
    await page.screenshot(path=str(tmp_path / "chat-360.png"), full_page=True)

    await bot.desk.reply("2026-000002", "A crew will fix it tomorrow morning.", staff=Staff("test", "Kim"))
    await expect(log).to_contain_text(
        "[2026-000002] Transport and Roads: A crew will fix it tomorrow morning.", timeout=10_000
    )

    # A reload keeps the conversation, each message once.
    await page.reload()
    await expect(log).to_contain_text("A crew will fix it tomorrow morning.", timeout=10_000)
    assert await log.get_by_text("How do I throw away a sofa?", exact=True).count() == 1
    assert await log.get_by_text("The streetlight in front of my house is broken", exact=True).count() == 1


async def test_korean_is_answered_in_korean(served: tuple[Bot, str], page: Page) -> None:
    _, url = served
    await page.goto(f"{url}/chat")
    await ask(page, "대형 폐기물은 어떻게 버리나요?")
    await expect(page.locator("#log")).to_contain_text("대형 폐기물은 구청 홈페이지나", timeout=10_000)
