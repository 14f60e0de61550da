"""The whole bot with the WhatsApp channel against the fake Twilio for WhatsApp and its staff desk in
the Slack stand-in: webhooks signed as Twilio and Slack sign them come in through the bot's own web
app (behind https://city.example, as behind a proxy), replies go out through the real twilio SDK,
on SQLite and on PostgreSQL. WhatsApp's clock (the adapter's and the fake's) is moved by the test
to step past the 24-hour window; the router keeps real time."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import func, select

import bot as bot_module
from channels.settings import RateLimitConfig
from channels.slack_config import SlackConfig
from channels.whatsapp import WhatsappChannel
from channels.whatsapp_config import ContentTemplate, WhatsappConfig
from router import Staff
from store import Contact, Database, Media, MediaStatus, Message, Outbox, OutboxStatus
from tests.conftest import ROOT, config_for_tests, with_channels
from tests.fakes.slack import FakeSlack, event_request, thread_reply_event
from tests.fakes.twilio import new_sid
from tests.fakes.whatsapp import FakeWhatsapp, SentWhatsapp, whatsapp_params
from tests.waiting import until

ACCOUNT = new_sid("AC")
TOKEN = "d" * 32
CITY = "whatsapp:+15005550006"
CITIZEN = "whatsapp:+821055501234"
PUBLIC = "https://city.example"
REFERENCE = re.compile(r"\d{4}-\d{6}")
KIM = Staff(id="cli:kim", name="kim")
SLACK_TOKEN, SLACK_SECRET = "xoxb-city-desk", "city-signing-secret-0123456789ab"
SLACK_KIM, SLACK_BOT = "U0KIM", "U0BOT"


class ShiftedClock:
    """Real time, plus what the test adds: WhatsApp's side of a day passing."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class WhatsappCity:
    bot: bot_module.Bot
    fake: FakeWhatsapp
    slack: FakeSlack
    clock: ShiftedClock
    server: str  # where the bot really listens; Twilio and Slack call PUBLIC, which stands in front
    resolved: str  # the Content SID of the "resolved" notice's template

    async def write(self, body: str, *, sid: str | None = None, **kwargs: Any) -> int:
        """The citizen writes on WhatsApp: Twilio's webhook, signed over the public URL."""
        params = whatsapp_params(
            ACCOUNT, sid=sid or new_sid("SM"), from_=CITIZEN, to=CITY, body=body, profile_name="Kim", **kwargs
        )
        return await self.fake.message(f"{PUBLIC}/webhooks/whatsapp", params, connect_to=self.server)

    def to_citizen(self) -> list[SentWhatsapp]:
        return self.fake.to(CITIZEN)

    async def replies(self, count: int, timeout: float = 10.0) -> list[SentWhatsapp]:
        await self.fake.wait_for(lambda f: len(self.to_citizen()) >= count, timeout=timeout)
        return self.to_citizen()

    async def count(self, table: Any) -> int:
        async with self.bot.db.session() as session:
            return int((await session.exec(select(func.count()).select_from(table))).one())

    async def outbox(self) -> list[Outbox]:
        async with self.bot.db.session() as session:
            return list((await session.exec(select(Outbox).order_by(Outbox.id))).all())  # type: ignore[arg-type]

    async def settled(self) -> list[Outbox]:
        rows: list[Outbox] = []

        async def nothing_in_flight() -> bool:
            rows[:] = await self.outbox()
            return all(row.status not in (OutboxStatus.PENDING, OutboxStatus.SENDING) for row in rows)

        await until(nothing_in_flight)
        return rows

    def slack_texts(self, channel: str) -> list[str]:
        return [
            json.dumps(m.blocks, ensure_ascii=False) + m.text
            for m in self.slack.messages(self.slack.channel_id(channel))
        ]


@pytest.fixture
async def city(database: Database, tmp_path: Path) -> AsyncIterator[WhatsappCity]:
    clock = ShiftedClock()
    async with FakeWhatsapp(ACCOUNT, TOKEN, clock=clock) as fake, FakeSlack(bot_token=SLACK_TOKEN) as slack:
        for name in ("dept-transport", "dept-housing", "dept-environment", "dept-triage", "faq-review"):
            slack.add_channel(name)
        slack.add_channel("intake-alerts")
        slack.add_user(SLACK_KIM, "Kim Minji")
        resolved = fake.approve("Ticket {{1}} is resolved. {{2}} Reply 1-5 to rate us.")
        whatsapp = WhatsappConfig(
            enabled=True,
            account_sid=ACCOUNT,
            auth_token=TOKEN,
            from_number=CITY,
            api_base_url=fake.base_url,
            timeout_seconds=0.5,
            rate_limit=RateLimitConfig(per_second=100.0),
            content_templates={"resolved": ContentTemplate(sid=resolved, variables=["reference", "text"])},
        )
        desk = SlackConfig(
            enabled=True, bot_token=SLACK_TOKEN, signing_secret=SLACK_SECRET, api_base_url=slack.api_url
        )
        config = with_channels(config_for_tests(tmp_path), whatsapp=whatsapp, slack=desk, public_url=PUBLIC)
        inboxes = config.router.desk.model_copy(
            update={"review_inbox": "#faq-review", "alerts_inbox": "#intake-alerts"}
        )
        config = config.model_copy(update={"router": config.router.model_copy(update={"desk": inboxes})})
        # The adapter bot.py would build, with WhatsApp's clock the test can move.
        channel = WhatsappChannel(whatsapp, public_url=PUBLIC, clock=clock)
        bot = await bot_module.build(config, base_dir=ROOT, channels=[channel], webchat=False, db=database)
        async with bot.running(sweeps=False), TestClient(TestServer(bot_module.make_app(bot))) as client:
            yield WhatsappCity(bot, fake, slack, clock, str(client.make_url("")).rstrip("/"), resolved)
        assert fake.spec_violations == []


async def complaint(city: WhatsappCity) -> str:
    """A forwarded complaint; returns its reference once the citizen was told."""
    assert await city.write("가로등이 고장났어요 어두워요") == 200
    [notice] = await city.replies(1)
    match = REFERENCE.search(notice.body)
    assert match, notice.body
    return match.group()


async def test_an_faq_question_is_answered_on_whatsapp(city: WhatsappCity) -> None:
    assert await city.write("소파 버리는 방법") == 200
    [answer] = await city.replies(1)
    assert "대형 폐기물은 구청 누리집이나 주민센터에서 배출 신고" in answer.body
    assert (answer.from_, answer.content_sid) == (CITY, None)  # free text: the citizen just wrote
    async with city.bot.db.session() as session:
        [contact] = (await session.exec(select(Contact))).all()
    assert (contact.channel, contact.address) == ("whatsapp", CITIZEN)


async def test_a_complaint_gets_its_reference_department_and_due_time(city: WhatsappCity) -> None:
    reference = await complaint(city)
    view = await city.bot.desk.show(reference)
    assert view.ticket.status == "forwarded" and view.ticket.department == "transport"
    assert view.ticket.due_at is not None
    [notice] = city.to_citizen()
    assert f"접수번호 {reference}: 교통도로과에 전달했습니다. 처리 예정:" in notice.body
    await until(lambda: city.slack.messages(city.slack.channel_id("dept-transport"), top_level=True))


async def test_a_staff_reply_in_the_slack_thread_reaches_the_citizen_on_whatsapp(city: WhatsappCity) -> None:
    reference = await complaint(city)
    transport = city.slack.channel_id("dept-transport")
    await until(lambda: city.slack.messages(transport, top_level=True))
    [card] = city.slack.messages(transport, top_level=True)
    written = city.slack.add_message(
        transport, "내일 오전에 수리하겠습니다", user=SLACK_KIM, thread_ts=card.ts
    )
    reply = thread_reply_event(
        transport, card.ts, SLACK_KIM, written.text, ts=written.ts, parent_user_id=SLACK_BOT
    )
    assert (
        await city.slack.post_to_app(f"{city.server}/webhooks/slack", *event_request(SLACK_SECRET, reply))
    ).status == 200
    told = (await city.replies(2))[1]
    assert told.body == f"[{reference}] 교통도로과: 내일 오전에 수리하겠습니다" and told.content_sid is None
    await until(lambda: "white_check_mark" in city.slack.reactions.get((transport, written.ts), []))


async def test_a_resolution_after_a_day_goes_as_the_approved_template(city: WhatsappCity) -> None:
    reference = await complaint(city)
    city.clock.offset = timedelta(hours=25)  # the citizen's last message is a day old
    await city.bot.desk.resolve(reference, "가로등을 교체했습니다.", staff=KIM)
    resolved = (await city.replies(2))[1]
    assert resolved.content_sid == city.resolved and resolved.content_variables == {
        "1": reference,
        "2": "가로등을 교체했습니다.",
    }
    assert resolved.body == f"Ticket {reference} is resolved. 가로등을 교체했습니다. Reply 1-5 to rate us."
    rows = await city.settled()
    assert [row.status for row in rows if row.channel == "whatsapp"] == [OutboxStatus.SENT] * 2
    # The citizen rates: a new message opens the window, and the thanks go as free text.
    assert await city.write("5") == 200
    thanks = (await city.replies(3))[2]
    assert thanks.content_sid is None and thanks.body == city.bot.lifecycle.notices.render("rated", "ko")


async def test_a_notice_without_template_after_a_day_fails_and_the_desk_is_told(city: WhatsappCity) -> None:
    reference = await complaint(city)
    city.clock.offset = timedelta(hours=25)
    attempts = city.fake.attempts
    await city.bot.desk.reply(reference, "내일 수리하겠습니다.", staff=KIM)

    async def failure_recorded() -> bool:
        view = await city.bot.desk.show(reference)
        return any(event.kind == "delivery_failed" for event in view.events)

    await until(failure_recorded)
    assert city.fake.attempts == attempts and len(city.to_citizen()) == 1  # Twilio was not even asked
    [row] = [r for r in await city.outbox() if r.channel == "whatsapp" and "내일 수리" in r.payload["text"]]
    assert row.status == OutboxStatus.FAILED
    assert "24-hour window, and notice 'staff_reply' has no approved template" in (row.last_error or "")
    await until(lambda: any("no approved template" in t for t in city.slack_texts("intake-alerts")))
    await until(lambda: any("no approved template" in t for t in city.slack_texts("dept-transport")))


async def test_a_forged_request_gets_403_and_stores_nothing(city: WhatsappCity) -> None:
    params = whatsapp_params(ACCOUNT, sid=new_sid("SM"), from_=CITIZEN, to=CITY, body="소파 버리는 방법")
    status = await city.fake.webhook(
        f"{PUBLIC}/webhooks/whatsapp", params, signature="bm90IGEgc2lnbmF0dXJl", connect_to=city.server
    )
    assert status == 403
    assert (await city.count(Message), await city.count(Contact), await city.count(Outbox)) == (0, 0, 0)


async def test_a_retried_webhook_stores_one_message_and_answers_once(city: WhatsappCity) -> None:
    sid = new_sid("SM")
    assert await city.write("소파 버리는 방법", sid=sid) == 200
    assert await city.write("소파 버리는 방법", sid=sid) == 200  # Twilio retries after a timeout
    await city.replies(1)
    assert len(await city.settled()) == 1 and len(city.to_citizen()) == 1
    assert await city.count(Message) == 2  # the question and the one answer


async def test_stop_is_honoured_nothing_goes_after_it(city: WhatsappCity) -> None:
    reference = await complaint(city)
    assert await city.write("STOP") == 200
    city.fake.opted_out.add(CITIZEN)  # Twilio's opt-out applies to the WhatsApp sender too
    attempts = city.fake.attempts
    await city.bot.desk.reply(reference, "수리했습니다.", staff=KIM)

    async def failure_recorded() -> bool:
        view = await city.bot.desk.show(reference)
        return any(event.kind == "delivery_failed" for event in view.events)

    await until(failure_recorded)
    assert city.fake.attempts == attempts and len(city.to_citizen()) == 1  # Twilio was not even asked
    [row] = [
        r for r in await city.outbox() if r.channel == "whatsapp" and "수리했습니다" in r.payload["text"]
    ]
    assert row.status == OutboxStatus.FAILED and "opted out" in (row.last_error or "")


async def test_a_photo_is_kept_and_shown_to_staff(city: WhatsappCity) -> None:
    sid = new_sid("MM")
    photo = b"\xff\xd8\xff\xe0 a photo of a broken street light"
    url = city.fake.add_media(sid, photo, "image/jpeg")
    assert await city.write("가로등이 고장났어요 어두워요", sid=sid, media=[(url, "image/jpeg")]) == 200

    async def stored() -> bool:
        async with city.bot.db.session() as session:
            rows = (await session.exec(select(Media))).all()
        return bool(rows) and all(row.status == MediaStatus.STORED for row in rows)

    await until(stored)
    city.fake.expire_media(url)  # Twilio deletes it; our copy stays
    async with city.bot.db.session() as session:
        [row] = (await session.exec(select(Media))).all()
    assert (row.data, row.content_type, row.source_url) == (photo, "image/jpeg", url)
    transport = city.slack.channel_id("dept-transport")
    await until(lambda: city.slack.messages(transport, top_level=True))
    [card] = city.slack.messages(transport, top_level=True)
    assert any(block["type"] == "image" for block in card.blocks)
