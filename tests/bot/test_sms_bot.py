"""The whole bot with the SMS channel against the fake Twilio: webhooks signed as Twilio signs them
come in through the bot's own web app (behind https://city.example, as behind a proxy), replies go
out through the real twilio SDK, on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import func, select

import bot as bot_module
from channels.settings import RateLimitConfig
from channels.sms_config import SmsConfig
from router import Staff
from store import Contact, Database, Media, MediaStatus, Message, Outbox, OutboxStatus
from tests.conftest import ROOT, config_for_tests, with_channels
from tests.fakes.twilio import FakeTwilio, SentSms, inbound_params, new_sid
from tests.waiting import until

ACCOUNT = new_sid("AC")
TOKEN = "d" * 32
CITY = "+15005550006"
CITIZEN = "+821055501234"
PUBLIC = "https://city.example"
REFERENCE = re.compile(r"\d{4}-\d{6}")
KIM = Staff(id="cli:kim", name="kim")


@dataclass
class SmsCity:
    bot: bot_module.Bot
    fake: FakeTwilio
    server: str  # where the bot really listens; Twilio calls PUBLIC, which stands in front of it

    async def text(self, body: str, *, sid: str | None = None, **kwargs: Any) -> int:
        """The citizen texts the city: Twilio's webhook, signed over the public URL."""
        params = inbound_params(
            ACCOUNT, sid=sid or new_sid("SM"), from_=CITIZEN, to=CITY, body=body, **kwargs
        )
        return await self.fake.webhook(f"{PUBLIC}/webhooks/sms", params, connect_to=self.server)

    def to_citizen(self) -> list[SentSms]:
        return [sms for sms in self.fake.sent if sms.to == CITIZEN]

    async def replies(self, count: int, timeout: float = 10.0) -> list[SentSms]:
        """Wait until the citizen has `count` texts; returns them all."""
        await self.fake.wait_for(lambda f: len(self.to_citizen()) >= count, timeout=timeout)
        return self.to_citizen()

    async def count(self, table: Any) -> int:
        async with self.bot.db.session() as session:
            return int((await session.exec(select(func.count()).select_from(table))).one())

    async def settled(self) -> list[Outbox]:
        """The outbox once nothing is waiting or being sent any more."""
        rows: list[Outbox] = []

        async def nothing_in_flight() -> bool:
            rows[:] = await self.outbox()
            return all(row.status not in (OutboxStatus.PENDING, OutboxStatus.SENDING) for row in rows)

        await until(nothing_in_flight)
        return rows

    async def outbox(self) -> list[Outbox]:
        async with self.bot.db.session() as session:
            return list((await session.exec(select(Outbox).order_by(Outbox.id))).all())  # type: ignore[arg-type]


@pytest.fixture
async def city(database: Database, tmp_path: Path) -> AsyncIterator[SmsCity]:
    async with FakeTwilio(ACCOUNT, TOKEN) as fake:
        sms = SmsConfig(
            enabled=True,
            account_sid=ACCOUNT,
            auth_token=TOKEN,
            from_number=CITY,
            api_base_url=fake.base_url,
            timeout_seconds=0.3,  # a hanging Twilio counts as failed soon
            rate_limit=RateLimitConfig(per_second=100.0),  # the default 1 segment a second is for real
        )
        config = with_channels(config_for_tests(tmp_path), sms=sms, public_url=PUBLIC, patient=True)
        bot = await bot_module.build(config, base_dir=ROOT, webchat=False, db=database)
        async with bot.running(sweeps=False), TestClient(TestServer(bot_module.make_app(bot))) as client:
            yield SmsCity(bot, fake, str(client.make_url("")).rstrip("/"))
        assert fake.spec_violations == []


async def complaint(city: SmsCity) -> str:
    """A forwarded complaint; returns its reference once the citizen was told."""
    assert await city.text("가로등이 고장났어요 어두워요") == 200
    [notice] = await city.replies(1)
    match = REFERENCE.search(notice.body)
    assert match, notice.body
    return match.group()


async def test_an_faq_question_is_answered_by_sms(city: SmsCity) -> None:
    assert await city.text("소파 버리는 방법") == 200
    [answer] = await city.replies(1)
    assert "대형 폐기물은 구청 누리집이나 주민센터에서 배출 신고" in answer.body
    assert (answer.from_, answer.status_callback is not None) == (CITY, True)


async def test_a_complaint_gets_its_reference_department_and_due_time(city: SmsCity) -> None:
    reference = await complaint(city)
    view = await city.bot.desk.show(reference)
    assert view.ticket.status == "forwarded" and view.ticket.department == "transport"
    assert view.ticket.due_at is not None
    [notice] = city.to_citizen()
    assert f"접수번호 {reference}: 교통도로과에 전달했습니다. 처리 예정:" in notice.body


async def test_a_staff_reply_reaches_the_citizen_by_sms(city: SmsCity) -> None:
    reference = await complaint(city)
    await city.bot.desk.reply(reference, "내일 오전에 수리하겠습니다.", staff=KIM)
    reply = (await city.replies(2))[1]
    assert reply.body == f"[{reference}] 교통도로과: 내일 오전에 수리하겠습니다."


async def test_a_forged_request_gets_403_and_stores_nothing(city: SmsCity) -> None:
    params = inbound_params(ACCOUNT, sid=new_sid("SM"), from_=CITIZEN, to=CITY, body="소파 버리는 방법")
    status = await city.fake.webhook(
        f"{PUBLIC}/webhooks/sms", params, signature="bm90IGEgc2lnbmF0dXJl", connect_to=city.server
    )
    assert status == 403
    assert (await city.count(Message), await city.count(Contact), await city.count(Outbox)) == (0, 0, 0)


async def test_a_retried_webhook_stores_one_message_and_answers_once(city: SmsCity) -> None:
    sid = new_sid("SM")
    assert await city.text("소파 버리는 방법", sid=sid) == 200
    assert await city.text("소파 버리는 방법", sid=sid) == 200  # Twilio retries after a timeout
    await city.replies(1)
    assert len(await city.settled()) == 1 and len(city.to_citizen()) == 1
    assert await city.count(Message) == 2  # the question and the one answer


async def test_stop_then_a_staff_reply_sends_nothing_and_records_the_failure(city: SmsCity) -> None:
    reference = await complaint(city)
    assert await city.text("STOP") == 200
    city.fake.opted_out.add(CITIZEN)  # Twilio itself blocks the number after STOP
    attempts = city.fake.attempts
    await city.bot.desk.reply(reference, "수리했습니다.", staff=KIM)

    async def failure_recorded() -> bool:
        view = await city.bot.desk.show(reference)
        return any(event.kind == "delivery_failed" for event in view.events)

    await until(failure_recorded)
    assert city.fake.attempts == attempts and len(city.to_citizen()) == 1  # Twilio was not even asked
    [row] = [row for row in await city.outbox() if "수리했습니다" in row.payload["text"]]
    assert row.status == OutboxStatus.FAILED and "opted out" in (row.last_error or "")


async def test_start_after_stop_sends_again(city: SmsCity) -> None:
    reference = await complaint(city)
    assert await city.text("STOP") == 200
    city.fake.opted_out.add(CITIZEN)
    assert await city.text("START") == 200
    city.fake.opted_out.discard(CITIZEN)  # and Twilio unblocks it on START
    opted_in = (await city.replies(2))[1]
    assert opted_in.body == city.bot.lifecycle.notices.render("opted_in", "ko")
    await city.bot.desk.reply(reference, "수리했습니다.", staff=KIM)
    assert (await city.replies(3))[2].body.endswith("수리했습니다.")


async def test_help_gets_the_sms_help_notice(city: SmsCity) -> None:
    assert await city.text("help") == 200
    [help_text] = await city.replies(1)
    notices = city.bot.lifecycle.notices
    assert help_text.body in {notices.render("help_sms", language) for language in ("ko", "en")}
    assert "STOP" in help_text.body


async def test_an_mms_photo_is_kept_after_twilio_expires_it(city: SmsCity) -> None:
    sid = new_sid("MM")
    photo = b"\xff\xd8\xff\xe0 a photo of a broken street light"
    url = city.fake.add_media(sid, photo, "image/jpeg")
    assert await city.text("가로등이 고장났어요", sid=sid, media=[(url, "image/jpeg")]) == 200

    async def stored() -> bool:
        async with city.bot.db.session() as session:
            rows = (await session.exec(select(Media))).all()
        return bool(rows) and all(row.status == MediaStatus.STORED for row in rows)

    await until(stored)
    city.fake.expire_media(url)  # Twilio deletes it; our copy stays
    async with city.bot.db.session() as session:
        [row] = (await session.exec(select(Media))).all()
    assert (row.data, row.content_type, row.source_url) == (photo, "image/jpeg", url)
    assert city.fake.media_requests == 1


async def test_twilio_answering_500_delays_the_reply_and_loses_none(city: SmsCity) -> None:
    city.fake.fail_next(2, status=500)
    assert await city.text("소파 버리는 방법") == 200
    [answer] = await city.replies(1)
    assert "대형 폐기물" in answer.body and city.fake.failed_attempts == 2
    [row] = await city.settled()
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 3)


async def test_twilio_down_for_a_while_delays_the_reply_and_loses_none(city: SmsCity) -> None:
    city.fake.down = True
    assert await city.text("소파 버리는 방법") == 200
    await city.fake.wait_for(lambda f: f.failed_attempts >= 3)
    assert city.to_citizen() == []
    city.fake.down = False
    await city.replies(1)
    [row] = await city.settled()
    assert row.status == OutboxStatus.SENT and len(city.to_citizen()) == 1


async def test_twilio_hanging_for_a_while_delays_the_reply_and_loses_none(city: SmsCity) -> None:
    city.fake.hang = True
    assert await city.text("소파 버리는 방법") == 200
    await city.fake.wait_for(lambda f: f.failed_attempts >= 2)  # the first attempt timed out, a retry hangs
    city.fake.hang = False
    [answer] = await city.replies(1)
    assert "대형 폐기물" in answer.body
    [row] = await city.settled()
    assert row.status == OutboxStatus.SENT and row.attempts >= 2 and len(city.to_citizen()) == 1


async def test_an_undelivered_status_callback_is_recorded_on_the_ticket(city: SmsCity) -> None:
    reference = await complaint(city)
    [notice] = city.to_citizen()
    assert notice.status_callback is not None and "key=" in notice.status_callback
    await city.settled()
    assert await city.fake.deliver(notice.sid, "sent", connect_to=city.server) == 204
    assert await city.fake.deliver(notice.sid, "undelivered", error_code=30005, connect_to=city.server) == 204
    [row] = await city.outbox()
    assert (row.delivery_status, row.delivery_error, row.provider_message_id) == (
        "undelivered",
        "30005",
        notice.sid,
    )
    view = await city.bot.desk.show(reference)
    assert [e.detail["status"] for e in view.events if e.kind == "delivery_failed"] == ["undelivered"]
