"""The Telegram Bot API's stand-in against the real python-telegram-bot 22: if these pass, an adapter
tested against it meets the same wire, the same answers and the same exceptions as production."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import ClientSession, web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity, Update
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import ApplicationBuilder

from tests.fakes.telegram import (
    SECRET_HEADER,
    FakeTelegram,
    callback_update,
    command_update,
    edited_text_update,
    location_update,
    my_chat_member_update,
    photo_update,
    text_update,
)

TOKEN = "123456:TEST-token_for_the_fake"
CHAT = 501


@pytest.fixture(autouse=True)
def _timedelta_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22's non-deprecated form of time periods (RetryAfter.retry_after as a timedelta).
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url) as client:
        yield client


def keyboard(*values: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(v, callback_data=f"rate:{v}") for v in values]])


async def test_initialize_calls_get_me_and_application_builder_works(fake: FakeTelegram) -> None:
    app = ApplicationBuilder().token(TOKEN).base_url(fake.base_url).base_file_url(fake.base_file_url)
    application = app.updater(None).build()
    async with application:
        assert application.bot.username == "city_intake_bot"
        assert application.bot.id == 123456  # Telegram's bot id is the token's prefix
    assert [r.endpoint for r in fake.requests] == ["getMe"]


async def test_wrong_token_is_unauthorized_and_unknown_method_not_found(fake: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(InvalidToken, match="rejected by the server"):
        async with Bot("123456:wrong", base_url=fake.base_url):
            pass
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("noSuchMethod")
    async with ClientSession() as http, http.post(f"{fake.base_url}{TOKEN}/noSuchMethod") as response:
        assert response.status == 404
        assert await response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_send_with_inline_keyboard_is_decoded_as_ptb_encodes_it(fake: FakeTelegram, bot: Bot) -> None:
    message = await bot.send_message(CHAT, "평가해 주세요", reply_markup=keyboard("1", "2", "3"))

    assert message.chat.id == CHAT
    assert message.text == "평가해 주세요"
    assert [b.callback_data for b in message.reply_markup.inline_keyboard[0]] == [
        "rate:1",
        "rate:2",
        "rate:3",
    ]
    [sent] = fake.sent
    assert (sent.chat_id, sent.text, sent.message_id) == (CHAT, "평가해 주세요", 1)
    assert [b["text"] for b in sent.buttons[0]] == ["1", "2", "3"]
    # PTB posts a form with strings as they are and everything else JSON-encoded.
    [request] = fake.of("sendMessage")
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert b"chat_id=501" in request.body
    [call] = fake.calls("sendMessage")
    assert call["chat_id"] == CHAT
    assert call["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "rate:1"
    assert (await bot.send_message(CHAT, "again")).message_id == 2


async def test_invalid_messages_are_refused_like_telegram(fake: FakeTelegram, bot: Bot) -> None:
    assert len((await bot.send_message(CHAT, "가" * 4096)).text) == 4096
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(CHAT, "가" * 4097)
    # Telegram counts UTF-16 code units: an emoji outside the BMP is two.
    await bot.send_message(CHAT, "🚧" * 2048)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(CHAT, "🚧" * 2049)
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(
            CHAT,
            "x",
            reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 65)]]),
        )
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(CHAT, " ")
    with pytest.raises(BadRequest, match=r"(?i)text buttons are unallowed"):
        await bot.send_message(CHAT, "x", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x")]]))
    assert len(fake.sent) == 2


async def test_blocked_deactivated_and_missing_chats(fake: FakeTelegram, bot: Bot) -> None:
    fake.blocked.add(7)
    fake.deactivated.add(8)
    fake.missing_chats.add(9)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(7, "hi")
    with pytest.raises(Forbidden, match="user is deactivated"):
        await bot.send_message(8, "hi")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(9, "hi")
    assert fake.sent == []
    await bot.send_message(10, "hi")
    assert [s.chat_id for s in fake.sent] == [10]


async def test_flood_answers_429_with_retry_after(fake: FakeTelegram, bot: Bot) -> None:
    fake.flood(retry_after=3)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(CHAT, "one")
    assert caught.value.retry_after == timedelta(seconds=3)
    await bot.send_message(CHAT, "two")
    assert [s.text for s in fake.sent] == ["two"]
    async with ClientSession() as http:
        fake.flood(retry_after=3)
        async with http.post(f"{fake.base_url}{TOKEN}/sendMessage", data={"chat_id": "1", "text": "x"}) as r:
            assert r.status == 429
            assert await r.json() == {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 3",
                "parameters": {"retry_after": 3},
            }


async def test_per_chat_rate_limit(fake: FakeTelegram, bot: Bot) -> None:
    fake.rate_limit_per_chat = 1.0
    await bot.send_message(CHAT, "one")
    await bot.send_message(CHAT + 1, "another chat is not limited")
    with pytest.raises(RetryAfter):
        await bot.send_message(CHAT, "too soon")


async def test_fail_next_down_and_hang(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next(2, status=500)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Internal Server Error"):
            await bot.send_message(CHAT, "x")
    await bot.send_message(CHAT, "after failures")

    fake.fail_next(1, status=502, endpoint="getFile")
    await bot.send_message(CHAT, "not affected by a getFile failure")
    with pytest.raises(NetworkError):
        await bot.get_file("anything")

    fake.fail_next(1, endpoint="sendMessage", after=1)  # the second send fails, the first goes through
    await bot.send_message(CHAT, "first of two")
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_message(CHAT, "second of two")

    fake.down = True
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(CHAT, "x")
    fake.down = False

    fake.hang = True
    with pytest.raises(TimedOut):
        await bot.send_message(CHAT, "held", read_timeout=0.2)
    before = ["after failures", "not affected by a getFile failure", "first of two"]
    assert [s.text for s in fake.sent] == before
    fake.hang = False
    await bot.send_message(CHAT, "after the hang")
    # The held request is processed once released although its client gave up, as Telegram may do:
    # a send that timed out may still have reached the chat.
    await fake.wait_for(lambda: len(fake.sent) == 5)
    assert {s.text for s in fake.sent[3:]} == {"held", "after the hang"}


async def test_get_updates_offset_semantics(fake: FakeTelegram, bot: Bot) -> None:
    for update_id in (11, 12, 13):
        fake.queue_update(text_update(update_id, CHAT, f"message {update_id}"))

    assert [u.update_id for u in await bot.get_updates()] == [11, 12, 13]
    assert len(fake.pending) == 3  # nothing confirmed without an offset
    assert [u.update_id for u in await bot.get_updates(offset=12)] == [12, 13]
    assert [u["update_id"] for u in fake.pending] == [12, 13]  # offset 12 confirmed 11
    assert await bot.get_updates(offset=14) == ()
    assert fake.pending == []


async def test_get_updates_long_poll_wakes_on_an_update_and_honours_timeout(
    fake: FakeTelegram, bot: Bot
) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert time.monotonic() - started >= 0.9  # the poll waited for the timeout, not less

    poll = asyncio.create_task(bot.get_updates(offset=1, timeout=10))
    await fake.wait_for(lambda: len(fake.calls("getUpdates")) == 2)
    fake.queue_update(text_update(21, CHAT, "during the poll"))
    updates = await asyncio.wait_for(poll, timeout=3)  # long before the poll's own 10 s
    assert [u.message.text for u in updates] == ["during the poll"]


async def test_a_second_poller_terminates_the_first(fake: FakeTelegram, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await fake.wait_for(lambda: len(fake.calls("getUpdates")) == 1)
    async with Bot(TOKEN, base_url=fake.base_url) as other:
        assert await other.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, timeout=3)


async def test_webhook_recorded_and_get_updates_conflicts(fake: FakeTelegram, bot: Bot) -> None:
    url = "https://city.example/webhooks/telegram"
    assert await bot.set_webhook(url, secret_token="s3cret_-X", allowed_updates=["message", "callback_query"])
    assert fake.webhook is not None
    assert (fake.webhook.url, fake.webhook.secret_token) == (url, "s3cret_-X")
    assert fake.webhook.allowed_updates == ["message", "callback_query"]
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates()
    with pytest.raises(BadRequest, match=r"(?i)secret token contains unallowed characters"):
        await bot.set_webhook(url, secret_token="not allowed!")
    fake.require_https = True
    with pytest.raises(BadRequest, match=r"(?i)an https url must be provided"):
        await bot.set_webhook("http://city.example/webhooks/telegram")
    assert fake.webhook.url == url

    fake.queue_update(text_update(31, CHAT, "queued while the webhook was set"))
    assert await bot.delete_webhook()
    assert fake.webhook is None
    assert [u.update_id for u in await bot.get_updates()] == [31]  # kept for the poller


async def test_allowed_updates_filter_get_updates(fake: FakeTelegram, bot: Bot) -> None:
    fake.queue_update(text_update(41, CHAT, "text"))
    fake.queue_update(callback_update(42, CHAT, "rate:5", message_id=1))
    updates = await bot.get_updates(allowed_updates=["callback_query"])
    assert [u.update_id for u in updates] == [42]


async def test_push_delivers_to_the_webhook_with_the_secret(fake: FakeTelegram, bot: Bot) -> None:
    received: list[tuple[str | None, dict]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get(SECRET_HEADER), await request.json()))
        return web.Response(status=200 if request.headers.get(SECRET_HEADER) == "s3cret" else 403)

    app = web.Application()
    app.router.add_post("/webhooks/telegram", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        await bot.set_webhook(f"http://127.0.0.1:{port}/webhooks/telegram", secret_token="s3cret")
        update = text_update(51, CHAT, "via webhook")
        assert await fake.push(update) == 200
        assert await fake.push(update, secret="forged") == 403
        assert await fake.push(update, omit_secret=True) == 403
        assert received == [("s3cret", update), ("forged", update), (None, update)]
    finally:
        await runner.cleanup()


async def test_photo_download_returns_the_bytes(fake: FakeTelegram, bot: Bot) -> None:
    data = bytes(range(256)) * 40
    fake.add_file("AgACphoto", data)
    update = Update.de_json(photo_update(61, CHAT, "AgACphoto", caption="pothole"), bot)

    assert update.message.caption == "pothole"
    largest = update.message.photo[-1]
    assert (largest.file_id, largest.width) == ("AgACphoto", 1280)
    assert [p.width for p in update.message.photo] == [90, 320, 800, 1280]
    file = await largest.get_file()
    assert file.file_size == len(data)
    assert bytes(await file.download_as_bytearray()) == data
    assert fake.downloads == ["AgACphoto"]

    fake.add_file("AgAChuge", b"x", file_size=20 * 1024 * 1024 + 1)
    with pytest.raises(BadRequest, match=r"(?i)file is too big"):
        await bot.get_file("AgAChuge")
    with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
        await bot.get_file("unknown")


async def test_builders_parse_as_telegram_updates(bot: Bot) -> None:
    text = Update.de_json(text_update(1, CHAT, "안녕하세요", language_code="ko", first_name="Minji"), bot)
    assert (text.effective_chat.id, text.effective_user.id, text.effective_user.language_code) == (
        CHAT,
        CHAT,
        "ko",
    )
    assert text.message.entities == ()

    start = Update.de_json(command_update(2, CHAT, "/status 2026-000123", language_code="en"), bot)
    assert start.message.text == "/status 2026-000123"
    assert start.message.parse_entities([MessageEntity.BOT_COMMAND]) == {start.message.entities[0]: "/status"}
    assert start.effective_user.language_code == "en"

    place = Update.de_json(location_update(3, CHAT, 37.5665, 126.978), bot)
    assert (place.message.location.latitude, place.message.location.longitude) == (37.5665, 126.978)

    press = Update.de_json(callback_update(4, CHAT, "rate:5", message_id=9), bot)
    assert (press.callback_query.data, press.callback_query.message.message_id) == ("rate:5", 9)
    assert press.effective_chat.id == CHAT

    edited = Update.de_json(edited_text_update(5, CHAT, "fixed typo", message_id=3), bot)
    assert edited.message is None
    assert edited.edited_message.text == "fixed typo"

    blocked = Update.de_json(my_chat_member_update(6, CHAT), bot)
    assert blocked.my_chat_member.new_chat_member.status == "kicked"


async def test_callback_answer_and_markup_edit(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(CHAT, "How was our answer?", reply_markup=keyboard("1", "5"))
    raw = callback_update(71, CHAT, "rate:5", sent.message_id, message=fake.message(CHAT, sent.message_id))
    press = Update.de_json(raw, bot)
    assert press.callback_query.message.reply_markup.inline_keyboard[0][1].callback_data == "rate:5"

    assert await press.callback_query.answer(text="Thank you")
    assert [(a.callback_query_id, a.text) for a in fake.callback_answers] == [
        (press.callback_query.id, "Thank you")
    ]
    with pytest.raises(BadRequest, match=r"(?i)query id is invalid"):
        await press.callback_query.answer()  # a query is answered once

    edited = await bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=None)
    assert edited.reply_markup is None
    assert [(e.chat_id, e.message_id, e.reply_markup) for e in fake.edits] == [(CHAT, sent.message_id, None)]
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=None)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_reply_markup(CHAT, 999, reply_markup=keyboard("1"))
