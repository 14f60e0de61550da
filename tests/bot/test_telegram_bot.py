"""The whole bot with Telegram: the fake Bot API pushes updates to the bot's real web server with the
secret token the bot registered, and the bot answers through the real python-telegram-bot. Each test
runs on SQLite and on PostgreSQL (the `database` fixture)."""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer, unused_port
from sqlmodel import select

import bot as bot_module
from channels.settings import RateLimitConfig
from channels.telegram_config import TelegramConfig
from router import Staff
from store import Database, Media, Message
from tests.conftest import ROOT, config_for_tests, with_channels
from tests.fakes.telegram import (
    FakeTelegram,
    SentMessage,
    callback_update,
    command_update,
    my_chat_member_update,
    photo_update,
    text_update,
)
from tests.waiting import until

TOKEN = "424242:city-bot-token"
SECRET = "city_webhook_secret-1"
CHAT = 9001
REFERENCE = re.compile(r"\d{4}-\d{6}")
KIM = Staff(id="cli:kim", name="kim")


@pytest.fixture(autouse=True)
def _timedelta_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@dataclass
class City:
    bot: bot_module.Bot
    fake: FakeTelegram
    next_update: int = 1

    def update_id(self) -> int:
        self.next_update += 1
        return self.next_update

    async def says(self, text: str, **kwargs: Any) -> int:
        """A citizen writes; Telegram pushes it; the webhook's HTTP status."""
        return await self.fake.push(text_update(self.update_id(), CHAT, text, **kwargs))

    def to_chat(self) -> list[SentMessage]:
        return [s for s in self.fake.sent if s.chat_id == CHAT]

    async def reply(self, count: int = 1, timeout: float = 10.0) -> SentMessage:
        """Wait for the chat's `count`-th message and return it."""
        await self.fake.wait_for(lambda: len(self.to_chat()) >= count, timeout=timeout)
        return self.to_chat()[count - 1]

    async def stored_messages(self) -> list[Message]:
        async with self.bot.db.session() as session:
            return list((await session.exec(select(Message))).all())


# Telegram allows about one message a second per chat; tests that are not about pacing go faster.
FAST = RateLimitConfig(per_second=100.0, per_recipient_per_second=50.0)


@contextlib.asynccontextmanager
async def running_city(database: Database, tmp_path: Path, **telegram: Any) -> AsyncIterator[City]:
    async with FakeTelegram(TOKEN) as fake:
        port = unused_port()
        values: dict[str, Any] = {
            "enabled": True,
            "token": TOKEN,
            "webhook_secret": SECRET,
            "api_base_url": fake.url,
            "request_timeout_seconds": 0.5,
            "backoff_seconds": 0.01,
            "backoff_max_seconds": 0.05,
            "poll_timeout_seconds": 1,
            "rate_limit": FAST,
        }
        section = TelegramConfig(**(values | telegram))
        config = with_channels(
            config_for_tests(tmp_path), telegram=section, public_url=f"http://127.0.0.1:{port}", patient=True
        )
        bot = await bot_module.build(config, base_dir=ROOT, webchat=False, db=database)
        async with bot.running(sweeps=False), TestServer(bot_module.make_app(bot), port=port):
            if section.mode == "webhook":
                await fake.wait_for(lambda: fake.webhook is not None)
            yield City(bot, fake)


@pytest.fixture
async def city(database: Database, tmp_path: Path) -> AsyncIterator[City]:
    async with running_city(database, tmp_path) as running:
        yield running


async def test_a_faq_question_is_answered_in_the_same_chat(city: City) -> None:
    assert city.fake.webhook is not None and city.fake.webhook.secret_token == SECRET
    assert await city.says("소파 버리는 방법") == 200
    answer = await city.reply()
    assert "대형 폐기물" in answer.text


async def test_a_complaint_gets_reference_department_and_due_time_then_staff_reply(city: City) -> None:
    assert await city.says("가로등이 고장났어요 어두워요") == 200
    notice = await city.reply()
    found = REFERENCE.search(notice.text)
    assert found, notice.text
    assert "교통도로과" in notice.text and "처리 예정" in notice.text
    reference = found.group()

    await city.bot.desk.reply(reference, "내일 오전에 수리하겠습니다.", staff=KIM)
    reply = await city.reply(2)
    assert reference in reply.text and "내일 오전에 수리하겠습니다." in reply.text


async def test_start_welcomes_in_the_users_language(city: City) -> None:
    await city.fake.push(command_update(city.update_id(), CHAT, "/start", language_code="en"))
    assert (await city.reply()).text.startswith("Hello, this is the city's help line")
    await city.fake.push(command_update(city.update_id(), CHAT + 1, "/start", language_code="ko"))
    await city.fake.wait_for(lambda: any(s.chat_id == CHAT + 1 for s in city.fake.sent))
    korean = next(s for s in city.fake.sent if s.chat_id == CHAT + 1)
    assert korean.text.startswith("안녕하세요")


async def test_status_command_with_a_reference(city: City) -> None:
    await city.says("There's a pothole on Main Street", language_code="en")
    reference = REFERENCE.search((await city.reply()).text)
    assert reference
    await city.fake.push(
        command_update(city.update_id(), CHAT, f"/status {reference.group()}", language_code="en")
    )
    status = await city.reply(2)
    assert status.text.startswith(f"Ticket {reference.group()}:"), status.text


async def test_resolve_asks_for_a_rating_and_a_press_rates(city: City) -> None:
    await city.says("가로등이 고장났어요 어두워요")
    found = REFERENCE.search((await city.reply()).text)
    assert found
    reference = found.group()
    await city.bot.desk.resolve(reference, "교체했습니다.", staff=KIM)
    request = await city.reply(2)
    assert [[b["callback_data"] for b in row] for row in request.buttons] == [["1", "2", "3", "4", "5"]]

    press = callback_update(
        city.update_id(), CHAT, "5", request.message_id, message=city.fake.message(CHAT, request.message_id)
    )
    assert await city.fake.push(press) == 200
    assert await city.fake.push(press) == 200  # Telegram retried: still one rating
    thanks = await city.reply(3)
    assert "감사" in thanks.text
    await city.fake.wait_for(lambda: len(city.fake.callback_answers) >= 1 and len(city.fake.edits) == 1)
    assert city.fake.callback_answers[0].callback_query_id == press["callback_query"]["id"]
    view = await city.bot.desk.show(reference)
    assert view.ticket.rating == 5
    assert [e.kind for e in view.events].count("rated") == 1


async def test_a_blocked_bot_is_a_permanent_failure_without_retries(city: City) -> None:
    city.fake.blocked.add(CHAT)
    assert await city.says("가로등이 고장났어요 어두워요") == 200
    [ticket] = await city.bot.desk.list_tickets()

    async def failed() -> bool:
        view = await city.bot.desk.show(ticket.reference)
        return any(e.kind == "delivery_failed" for e in view.events)

    await until(failed)
    attempts = [c for c in city.fake.calls("sendMessage") if c.get("chat_id") == CHAT]
    assert len(attempts) == 1
    assert city.to_chat() == []


async def test_a_citizen_who_blocks_the_bot_gets_nothing_until_unblocking(city: City) -> None:
    assert await city.says("가로등이 고장났어요 어두워요") == 200
    await city.reply(1)
    [ticket] = await city.bot.desk.list_tickets()
    assert await city.fake.push(my_chat_member_update(city.update_id(), CHAT, new_status="kicked")) == 200
    await city.bot.desk.reply(ticket.reference, "내일 수리합니다", staff=KIM)

    async def refused() -> bool:
        view = await city.bot.desk.show(ticket.reference)
        return any(e.kind == "delivery_failed" and "opted out" in e.detail["error"] for e in view.events)

    await until(refused)
    assert len(city.to_chat()) == 1  # not even tried: the stop came first

    assert await city.fake.push(my_chat_member_update(city.update_id(), CHAT, new_status="member")) == 200
    # Unblocking sends nothing of its own (no SMS-style notice); the next reply goes out.
    await city.bot.desk.reply(ticket.reference, "수리했습니다", staff=KIM)
    assert (
        await city.reply(2)
    ).text == f"[{ticket.reference}] 교통도로과: 수리했습니다"  # no SMS-style notice


@pytest.mark.parametrize("outage", ["500", "down", "hang"])
async def test_an_outage_delays_and_loses_nothing(city: City, outage: str) -> None:
    fake = city.fake
    if outage == "500":
        fake.fail_next(3, status=500, endpoint="sendMessage")
    elif outage == "down":
        fake.down = True
    else:
        fake.hang = True
    assert await city.says("소파 버리는 방법") == 200
    await fake.wait_for(lambda: len(fake.calls("sendMessage")) >= 3)
    fake.down = fake.hang = False
    answer = await city.reply()
    assert "대형 폐기물" in answer.text
    if outage != "hang":
        assert len(city.to_chat()) == 1
    # After a hang, each attempt the bot gave up on may still be delivered once released: at least
    # once, as with the real Telegram (sendMessage has no idempotency key).


async def test_a_forged_update_is_refused_and_stores_nothing(city: City) -> None:
    assert await city.fake.push(text_update(city.update_id(), CHAT, "가짜"), secret="wrong-secret") == 403
    assert await city.fake.push(text_update(city.update_id(), CHAT, "가짜"), omit_secret=True) == 403
    assert await city.stored_messages() == []
    assert await city.bot.desk.list_tickets() == []


async def test_a_retried_webhook_is_one_message(city: City) -> None:
    update = text_update(city.update_id(), CHAT, "가로등이 고장났어요 어두워요")
    assert await city.fake.push(update) == 200
    assert await city.fake.push(update) == 200
    await city.reply()
    inbound = [m for m in await city.stored_messages() if m.direction == "in"]
    assert [m.provider_message_id for m in inbound] == [str(update["update_id"])]
    assert len(await city.bot.desk.list_tickets()) == 1
    assert len(city.to_chat()) == 1


async def test_a_photo_is_copied_into_the_store(city: City) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 64
    city.fake.add_file("AgACpothole", jpeg)
    update = photo_update(city.update_id(), CHAT, "AgACpothole", caption="도로에 구멍이 났어요")
    assert await city.fake.push(update) == 200

    async def stored() -> bool:
        async with city.bot.db.session() as session:
            rows = (await session.exec(select(Media))).all()
        return bool(rows) and rows[0].status == "stored"

    await until(stored)
    async with city.bot.db.session() as session:
        [media] = (await session.exec(select(Media))).all()
    assert (media.data, media.content_type) == (jpeg, "image/jpeg")


async def test_polling_mode_answers_without_a_public_url(database: Database, tmp_path: Path) -> None:
    async with running_city(database, tmp_path, mode="polling") as city:
        city.fake.queue_update(text_update(city.update_id(), CHAT, "소파 버리는 방법"))
        answer = await city.reply()
        assert "대형 폐기물" in answer.text
        assert city.fake.webhook is None
        await city.fake.wait_for(lambda: city.fake.pending == [])


async def test_messages_to_one_chat_keep_telegrams_pace(database: Database, tmp_path: Path) -> None:
    async with running_city(database, tmp_path, rate_limit=TelegramConfig().rate_limit) as city:
        city.fake.rate_limit_per_chat = 0.5  # 429 to a faster sender; the pacer spaces slots 1 s apart
        await city.says("가로등이 고장났어요 어두워요")
        found = REFERENCE.search((await city.reply()).text)
        assert found
        await city.bot.desk.reply(found.group(), "확인 중입니다.", staff=KIM)
        await city.bot.desk.reply(found.group(), "내일 수리합니다.", staff=KIM)
        await city.reply(3)
        sent = city.to_chat()
        assert len(city.fake.calls("sendMessage")) == 3  # no 429, no retry
        assert all(b.at - a.at >= 0.5 for a, b in itertools.pairwise(sent))
