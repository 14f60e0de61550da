"""The Telegram adapter against the fake Bot API (tests/fakes/telegram.py), with the real
python-telegram-bot underneath: webhooks in, long polling, media, buttons, sending and its errors."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError
from telegram import Bot

from channels.base import (
    Attachment,
    Button,
    InboundMessage,
    OutboundMessage,
    PermanentSendError,
    Receipt,
    TransientSendError,
)
from channels.telegram import SECRET_HEADER, TelegramChannel, parts_of
from channels.telegram_config import TelegramConfig
from tests.fakes.telegram import (
    FakeTelegram,
    callback_update,
    command_update,
    edited_text_update,
    location_update,
    my_chat_member_update,
    photo_update,
    text_update,
)
from tests.waiting import until

TOKEN = "123456:ABC-adapter_test"
SECRET = "s3cret-Token_1"
CHAT = 777


@pytest.fixture(autouse=True)
def _timedelta_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # keeps PTB's RetryAfter from warning in the fake's tests


class Host:
    """The router's side as the adapter sees it: intake dedupes on the provider's id like the store;
    `gate` holds intake (to look at what happens meanwhile), `failures` makes it raise."""

    leading = True  # False: another instance runs the pollers

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.calls = 0
        self.failures = 0
        self.gate: asyncio.Event | None = None
        self.returned_at: list[float] = []

    async def intake(self, message: InboundMessage) -> Receipt:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the store is down")
        duplicate = any(m.provider_message_id == message.provider_message_id for m in self.messages)
        if not duplicate:
            self.messages.append(message)
        self.returned_at.append(time.monotonic())
        return Receipt(duplicate=duplicate)

    async def delivery_report(self, report: Any) -> bool:
        return False

    async def recall(self, channel: str, name: str) -> str | None:
        return None

    async def remember(self, channel: str, name: str, value: str) -> None:
        pass

    async def lead(self, job: str) -> bool:
        return self.leading


def config(fake: FakeTelegram, **overrides: Any) -> TelegramConfig:
    values: dict[str, Any] = {
        "enabled": True,
        "token": TOKEN,
        "webhook_secret": SECRET,
        "api_base_url": fake.url,
        "backoff_seconds": 0.01,
        "backoff_max_seconds": 0.05,
        "request_timeout_seconds": 2.0,
        "poll_timeout_seconds": 1,
    }
    return TelegramConfig(**(values | overrides))


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as server:
        yield server


@pytest.fixture
async def host() -> Host:
    return Host()


Started = Callable[..., Awaitable[TelegramChannel]]
Hook = tuple[TelegramChannel, TestClient]


@pytest.fixture
async def started(fake: FakeTelegram, host: Host) -> AsyncIterator[Started]:
    channels: list[TelegramChannel] = []

    async def start(public_url: str = "https://city.example", **overrides: Any) -> TelegramChannel:
        channel = TelegramChannel(config(fake, **overrides), public_url=public_url)
        await channel.start(host)
        channels.append(channel)
        return channel

    yield start
    for channel in channels:
        await channel.stop()


@pytest.fixture
async def webhook(started: Started) -> AsyncIterator[Hook]:
    channel = await started()
    app = web.Application()
    app.add_routes(channel.routes())
    async with TestClient(TestServer(app)) as client:
        yield channel, client


async def post(client: TestClient, update: dict[str, Any] | bytes, secret: str | None = SECRET) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    async with client.post("/webhooks/telegram", data=body, headers=headers) as response:
        return response.status


# --- configuration and start-up ---------------------------------------------------------------


def test_config_fails_fast_on_missing_secrets() -> None:
    with pytest.raises(ValidationError, match="needs token"):
        TelegramConfig(enabled=True)
    with pytest.raises(ValidationError, match="webhook_secret"):
        TelegramConfig(enabled=True, token=TOKEN, webhook_secret="not allowed!")
    assert TelegramConfig(enabled=True, token=TOKEN, mode="polling").webhook_secret == ""


async def test_start_registers_the_webhook_with_the_secret(fake: FakeTelegram, started: Started) -> None:
    channel = await started(public_url="https://city.example/")
    await fake.wait_for(lambda: fake.webhook is not None)
    assert fake.webhook is not None
    assert fake.webhook.url == "https://city.example/webhooks/telegram"
    assert fake.webhook.secret_token == SECRET
    assert fake.webhook.allowed_updates == ["message", "callback_query", "my_chat_member"]
    assert [r.method for r in channel.routes()] == ["POST"]


async def test_start_does_not_fail_while_telegram_is_down(fake: FakeTelegram, started: Started) -> None:
    fake.down = True
    await started()  # returns at once; registration is retried in the background
    await fake.wait_for(lambda: len(fake.calls("setWebhook")) >= 2)
    assert fake.webhook is None
    fake.down = False
    await fake.wait_for(lambda: fake.webhook is not None)


async def test_no_registration_when_set_webhook_is_off(fake: FakeTelegram, started: Started) -> None:
    await started(set_webhook=False)
    await asyncio.sleep(0.05)  # give a wrongly started registration the chance to show itself
    assert fake.requests == []


async def test_the_registered_webhook_receives_what_telegram_pushes(
    fake: FakeTelegram, host: Host, started: Started
) -> None:
    holder: dict[str, TelegramChannel] = {}

    async def route(request: web.Request) -> web.StreamResponse:
        return await holder["channel"].handle_webhook(request)

    app = web.Application()
    app.router.add_post("/webhooks/telegram", route)
    async with TestServer(app) as server:
        holder["channel"] = await started(public_url=str(server.make_url("")))
        await fake.wait_for(lambda: fake.webhook is not None)
        assert await fake.push(text_update(1, CHAT, "안녕하세요")) == 200
        assert await fake.push(text_update(2, CHAT, "forged"), secret="wrong") == 403
    assert [m.text for m in host.messages] == ["안녕하세요"]


# --- the webhook ------------------------------------------------------------------------------


async def test_secret_token_valid_forged_missing(webhook: Hook, host: Host) -> None:
    _, client = webhook
    assert await post(client, text_update(10, CHAT, "forged"), secret="s3cret-Token_2") == 403
    assert await post(client, text_update(11, CHAT, "missing"), secret=None) == 403
    assert await post(client, text_update(12, CHAT, "prefix"), secret=SECRET[:-1]) == 403
    assert host.calls == 0
    assert await post(client, text_update(13, CHAT, "가로등이 고장났어요")) == 200
    [message] = host.messages
    assert message.channel == "telegram"
    assert (message.sender, message.text, message.provider_message_id) == (
        str(CHAT),
        "가로등이 고장났어요",
        "13",
    )
    assert (message.language_hint, message.sender_name, message.command) == ("ko", "Minji", None)
    assert message.received_at.tzinfo is not None
    assert message.raw is not None and message.raw["update_id"] == 13


async def test_a_replayed_update_is_one_message(webhook: Hook, host: Host) -> None:
    _, client = webhook
    update = text_update(20, CHAT, "There's a pothole on Main Street", language_code="en")
    assert await post(client, update) == 200
    assert await post(client, update) == 200
    assert host.calls == 2
    assert [m.provider_message_id for m in host.messages] == ["20"]


async def test_malformed_and_oversized_bodies(webhook: Hook, host: Host) -> None:
    _, client = webhook
    assert await post(client, b"{not json") == 400
    assert await post(client, b"[1, 2]") == 400
    assert await post(client, json.dumps({"message": {"text": "no update_id"}}).encode()) == 400
    assert await post(client, json.dumps({"update_id": 5, "message": "not an object"}).encode()) == 400
    huge = text_update(21, CHAT, "x" * (TelegramChannel.max_body_bytes + 1))
    assert await post(client, huge) == 413
    assert host.calls == 0


async def test_failed_intake_asks_telegram_to_retry(webhook: Hook, host: Host) -> None:
    _, client = webhook
    host.failures = 1
    update = text_update(22, CHAT, "retry me")
    assert await post(client, update) == 503
    assert await post(client, update) == 200
    assert [m.text for m in host.messages] == ["retry me"]


async def test_blocking_and_unblocking_the_bot_are_stop_and_unstop(webhook: Hook, host: Host) -> None:
    _, client = webhook
    assert await post(client, my_chat_member_update(40, CHAT, new_status="kicked")) == 200
    assert await post(client, my_chat_member_update(41, CHAT, new_status="member")) == 200
    assert [(m.command, m.sender, m.provider_message_id) for m in host.messages] == [
        ("stop", str(CHAT), "40"),
        ("unstop", str(CHAT), "41"),
    ]


async def test_edits_groups_and_other_updates_are_acknowledged_and_ignored(webhook: Hook, host: Host) -> None:
    _, client = webhook
    assert await post(client, edited_text_update(30, CHAT, "edited", message_id=3)) == 200
    assert await post(client, text_update(32, -100200, "in a group", user_id=CHAT)) == 200
    sticker = text_update(33, CHAT, "")
    sticker["message"].pop("text")
    sticker["message"]["sticker"] = {
        "file_id": "CAAC",
        "file_unique_id": "AgAD",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
    assert await post(client, sticker) == 200
    assert host.calls == 0


async def test_photo_with_caption_is_fetched_through_ptb(
    webhook: Hook, host: Host, fake: FakeTelegram
) -> None:
    channel, client = webhook
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 100
    fake.add_file("AgACbig", jpeg)
    assert await post(client, photo_update(40, CHAT, "AgACbig", caption="보도블록이 깨졌어요")) == 200
    [message] = host.messages
    assert message.text == "보도블록이 깨졌어요"
    assert message.attachments == (Attachment(url="telegram-file:AgACbig", content_type="image/jpeg"),)

    fetched = await channel.fetch_media(message.attachments[0])
    assert (fetched.data, fetched.content_type) == (jpeg, "image/jpeg")
    assert fake.downloads == ["AgACbig"]


async def test_documents_and_voice_notes_are_attachments(webhook: Hook, host: Host) -> None:
    _, client = webhook
    document = text_update(41, CHAT, "")
    document["message"].pop("text")
    document["message"]["document"] = {
        "file_id": "BQACdoc",
        "file_unique_id": "AgADdoc",
        "file_name": "crack.png",
        "mime_type": "image/png",
        "file_size": 2048,
    }
    voice = text_update(42, CHAT, "")
    voice["message"].pop("text")
    voice["message"]["voice"] = {"file_id": "AwACvoice", "file_unique_id": "AgADvoice", "duration": 4}
    assert await post(client, document) == 200
    assert await post(client, voice) == 200
    assert [m.attachments for m in host.messages] == [
        (Attachment(url="telegram-file:BQACdoc", content_type="image/png", filename="crack.png"),),
        (Attachment(url="telegram-file:AwACvoice", content_type="audio/ogg"),),
    ]


async def test_fetch_media_errors(started: Started, fake: FakeTelegram) -> None:
    channel = await started(set_webhook=False, max_media_bytes=1000)
    fake.add_file("AgACsmall", b"x" * 10)
    fake.add_file("AgACtoo_big_for_us", b"x" * 1001)
    fake.add_file("AgACtoo_big_for_telegram", b"x", file_size=20 * 1024 * 1024 + 1)
    with pytest.raises(PermanentSendError, match="over the 1000 limit"):
        await channel.fetch_media(Attachment(url="telegram-file:AgACtoo_big_for_us"))
    with pytest.raises(PermanentSendError, match=r"(?i)file is too big"):
        await channel.fetch_media(Attachment(url="telegram-file:AgACtoo_big_for_telegram"))
    with pytest.raises(PermanentSendError, match=r"(?i)invalid file_id"):
        await channel.fetch_media(Attachment(url="telegram-file:gone"))
    with pytest.raises(PermanentSendError, match="not a Telegram file"):
        await channel.fetch_media(Attachment(url="https://example.com/x.jpg"))
    fake.down = True
    with pytest.raises(TransientSendError):
        await channel.fetch_media(Attachment(url="telegram-file:AgACsmall"))
    fake.down = False
    assert (await channel.fetch_media(Attachment(url="telegram-file:AgACsmall"))).data == b"x" * 10


async def test_location(webhook: Hook, host: Host) -> None:
    _, client = webhook
    assert await post(client, location_update(50, CHAT, 37.5665, 126.978)) == 200
    [message] = host.messages
    assert message.location is not None
    assert (message.location.latitude, message.location.longitude) == (37.5665, 126.978)
    assert message.text == ""


async def test_commands(webhook: Hook, host: Host) -> None:
    _, client = webhook
    updates = [
        command_update(60, CHAT, "/start", language_code="en-US"),
        command_update(61, CHAT, "/status 2026-000123"),
        command_update(62, CHAT, "/status"),
        command_update(63, CHAT, "/help@city_intake_bot"),
        command_update(64, CHAT, "/weather today"),
        text_update(65, CHAT, "what about /start in the middle"),
    ]
    for update in updates:
        assert await post(client, update) == 200
    seen = [(m.command, m.text, m.language_hint) for m in host.messages]
    assert seen == [
        ("start", "", "en"),
        ("status", "2026-000123", "ko"),
        ("status", "", "ko"),
        ("help", "", "ko"),
        (None, "/weather today", "ko"),
        (None, "what about /start in the middle", "ko"),
    ]


async def test_button_press_is_answered_after_intake_returned(
    webhook: Hook, host: Host, fake: FakeTelegram
) -> None:
    channel, client = webhook
    buttons = tuple(Button(str(n), str(n)) for n in range(1, 6))
    await channel.send(
        OutboundMessage("telegram", str(CHAT), "How was our answer?", "rate-1", buttons=buttons)
    )
    shown = fake.sent[0]
    press = callback_update(70, CHAT, "5", shown.message_id, message=fake.message(CHAT, shown.message_id))

    host.gate = asyncio.Event()
    status = asyncio.create_task(post(client, press))
    await until(lambda: host.calls == 1)
    await asyncio.sleep(0.05)  # time in which a premature answer would show
    assert fake.callback_answers == []
    host.gate.set()
    assert await status == 200
    await fake.wait_for(lambda: len(fake.callback_answers) == 1 and len(fake.edits) == 1)
    [message] = host.messages
    assert (message.text, message.sender, message.provider_message_id) == ("5", str(CHAT), "70")
    assert fake.callback_answers[0].callback_query_id == press["callback_query"]["id"]
    assert fake.callback_answers[0].at >= host.returned_at[0]
    # The buttons are gone, so the same rating cannot be pressed twice.
    assert fake.edits[0].reply_markup is None
    assert "reply_markup" not in (fake.message(CHAT, shown.message_id) or {})


# --- long polling -----------------------------------------------------------------------------


async def test_polling_deletes_the_webhook_and_delivers(
    fake: FakeTelegram, host: Host, started: Started
) -> None:
    async with Bot(TOKEN, base_url=fake.base_url) as earlier_deployment:
        await earlier_deployment.set_webhook("https://old.example/hook")
    fake.queue_update(text_update(100, CHAT, "first"))
    fake.queue_update(edited_text_update(101, CHAT, "an edit", message_id=1))
    fake.queue_update(photo_update(102, CHAT, "AgACp", caption="second"))
    channel = await started(mode="polling", webhook_secret="")
    assert channel.routes() == []
    await until(lambda: len(host.messages) == 2)
    assert fake.webhook is None
    assert [m.text for m in host.messages] == ["first", "second"]
    await fake.wait_for(lambda: fake.pending == [])  # confirmed by the following getUpdates
    first_poll = fake.calls("getUpdates")[0]
    assert first_poll["allowed_updates"] == ["message", "callback_query", "my_chat_member"]


async def test_polling_confirms_an_update_only_after_intake(
    fake: FakeTelegram, host: Host, started: Started
) -> None:
    host.gate = asyncio.Event()
    fake.queue_update(text_update(200, CHAT, "slow to store"))
    await started(mode="polling")
    await until(lambda: host.calls == 1)
    polls_before = len(fake.calls("getUpdates"))
    await asyncio.sleep(0.05)  # time in which a premature confirmation would show
    assert [u["update_id"] for u in fake.pending] == [200]
    assert len(fake.calls("getUpdates")) == polls_before  # no poll while intake runs
    host.gate.set()
    await fake.wait_for(lambda: fake.pending == [])
    assert any(call.get("offset") == 201 for call in fake.calls("getUpdates"))


async def test_polling_retries_an_update_intake_failed_on(
    fake: FakeTelegram, host: Host, started: Started
) -> None:
    host.failures = 2
    fake.queue_update(text_update(300, CHAT, "keep me"))
    fake.queue_update(text_update(301, CHAT, "and me"))
    await started(mode="polling")
    await until(lambda: len(host.messages) == 2)
    assert [m.text for m in host.messages] == ["keep me", "and me"]
    assert host.calls == 4


async def test_polling_survives_errors_and_answers_presses(
    fake: FakeTelegram, host: Host, started: Started
) -> None:
    fake.fail_next(3, status=500, endpoint="getUpdates")
    fake.flood(retry_after=1, endpoint="getUpdates")
    await started(mode="polling")
    await fake.wait_for(lambda: len(fake.calls("getUpdates")) >= 5)  # 3 errors, a 429, then a poll
    fake.down = True
    await fake.wait_for(lambda: len(fake.calls("getUpdates")) >= 8)
    fake.down = False
    fake.queue_update(callback_update(400, CHAT, "3", message_id=9))
    await until(lambda: len(host.messages) == 1)
    assert host.messages[0].text == "3"
    await fake.wait_for(lambda: len(fake.callback_answers) == 1)


async def test_stop_ends_a_long_poll_at_once(fake: FakeTelegram, started: Started) -> None:
    channel = await started(mode="polling", poll_timeout_seconds=30)
    await fake.wait_for(lambda: len(fake.calls("getUpdates")) == 1)
    began = time.monotonic()
    await asyncio.wait_for(channel.stop(), timeout=10)
    assert time.monotonic() - began < 10  # not the 30 s long poll (generous: CI machines are busy)
    await channel.stop()  # twice is fine


# --- sending ----------------------------------------------------------------------------------


def outbound(text: str, *, key: str = "k1", recipient: str = str(CHAT), **kwargs: Any) -> OutboundMessage:
    return OutboundMessage("telegram", recipient, text, key, **kwargs)


async def test_send_text_and_buttons(started: Started, fake: FakeTelegram) -> None:
    channel = await started(set_webhook=False)
    rating = tuple(Button(str(n), str(n)) for n in range(1, 6))
    result = await channel.send(outbound("평가해 주세요", buttons=rating))
    [sent] = fake.sent
    assert (sent.chat_id, sent.text) == (CHAT, "평가해 주세요")
    assert [[b["callback_data"] for b in row] for row in sent.buttons] == [["1", "2", "3", "4", "5"]]
    assert result.provider_message_id == str(sent.message_id)

    await channel.send(
        outbound("Need more?", key="k2", buttons=(Button("Talk to a person", "0"), Button("No", "n")))
    )
    assert [[b["text"] for b in row] for row in fake.sent[1].buttons] == [["Talk to a person"], ["No"]]

    await channel.send(outbound("Pick", key="k3", buttons=(Button("long value", "v" * 65),)))
    assert fake.sent[2].reply_markup is None
    assert fake.sent[2].text == "Pick\nv" + "v" * 64 + ": long value"


async def test_long_text_is_split_and_a_retry_sends_only_the_rest(
    started: Started, fake: FakeTelegram
) -> None:
    channel = await started(set_webhook=False)
    paragraphs = [(f"Paragraph {i}. " + "가나다라마바사. " * 250).strip() for i in range(4)]
    text = "\n\n".join(paragraphs)
    assert len(text) > 2 * 4096
    buttons = (Button("1", "1"),)
    assert channel.send_cost(outbound(text)) == len(parts_of(text))

    fake.fail_next(1, status=500, endpoint="sendMessage", after=1)
    with pytest.raises(TransientSendError):
        await channel.send(outbound(text, key="long", buttons=buttons))
    assert len(fake.sent) == 1
    await channel.send(outbound(text, key="long", buttons=buttons))
    parts = [s.text for s in fake.sent]
    assert "\n\n".join(parts) == text.strip()  # nothing sent twice, nothing lost
    assert all(len(p) <= 4096 for p in parts)
    assert all(p.startswith("Paragraph") for p in parts)  # cut between paragraphs
    assert [s.reply_markup is not None for s in fake.sent] == [False] * (len(parts) - 1) + [True]


@pytest.mark.parametrize(
    ("arrange", "error", "match"),
    [
        (lambda f: f.blocked.add(CHAT), PermanentSendError, "blocked by the user"),
        (lambda f: f.deactivated.add(CHAT), PermanentSendError, "deactivated"),
        (lambda f: f.missing_chats.add(CHAT), PermanentSendError, "(?i)chat not found"),
        (lambda f: f.fail_next(1, status=500), TransientSendError, "Internal Server Error"),
        (lambda f: f.fail_next(1, status=502), TransientSendError, "Bad Gateway"),
        (lambda f: setattr(f, "down", True), TransientSendError, "Bad Gateway"),
        (lambda f: setattr(f, "hang", True), TransientSendError, "TimedOut"),
        (lambda f: setattr(f, "token", "999:other"), TransientSendError, "InvalidToken"),
    ],
)
async def test_send_errors_say_whether_to_retry(
    started: Started, fake: FakeTelegram, arrange: Callable[[FakeTelegram], Any], error: type, match: str
) -> None:
    channel = await started(set_webhook=False, request_timeout_seconds=0.3)
    arrange(fake)
    began = time.monotonic()
    with pytest.raises(error, match=match) as caught:
        await channel.send(outbound("hello"))
    assert time.monotonic() - began < 10  # a hanging API does not hold the send (it would, forever)
    assert TOKEN not in str(caught.value)


async def test_flood_control_carries_retry_after(started: Started, fake: FakeTelegram) -> None:
    channel = await started(set_webhook=False)
    fake.flood(retry_after=3)
    with pytest.raises(TransientSendError) as caught:
        await channel.send(outbound("hello"))
    assert caught.value.retry_after == 3.0
    with pytest.raises(PermanentSendError, match="not a Telegram chat id"):
        await channel.send(outbound("hello", recipient="+821012345678"))
