"""The whole bot with the KakaoTalk channel: skill calls from the fake Kakao (Open Builder's way, with
the secret header) through the bot's own web app, answers checked against the v2.0 rules, status
updates through the fake Event API; staff answer in the fake Slack's department threads. SQLite and
PostgreSQL."""

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
from channels.kakao_config import KakaoConfig
from channels.slack_config import SlackConfig
from store import Contact, Database, Message, Outbox, OutboxStatus, Ticket
from tests.conftest import ROOT, config_for_tests, with_channels
from tests.fakes.kakao import Answer, FakeKakao, labels_of, new_user_key
from tests.fakes.slack import FakeSlack, event_request, thread_reply_event
from tests.waiting import until

BOT_ID = "5f1e2d3c4b5a697887766554"
KEY = "k" * 32
SECRET = "city-skill-secret-0123456789"
HEADER = "X-City-Skill-Secret"
EVENT = "city_status_update"
CITIZEN = new_user_key()
REFERENCE = re.compile(r"\d{4}-\d{6}")
SLACK_TOKEN, SLACK_SECRET, KIM, SLACK_BOT = (
    "xoxb-city-desk",
    "city-signing-secret-0123456789ab",
    "U0KIM",
    "U0BOT",
)


@dataclass
class KakaoCity:
    bot: bot_module.Bot
    kakao: FakeKakao
    slack: FakeSlack
    client: TestClient[Any, Any]

    async def say(self, text: str, **kwargs: Any) -> Answer:
        payload = self.kakao.payload(text, user=CITIZEN)
        return await self.kakao.call_skill(str(self.client.make_url("/webhooks/kakao")), payload, **kwargs)

    async def count(self, table: Any) -> int:
        async with self.bot.db.session() as session:
            return int((await session.exec(select(func.count()).select_from(table))).one())

    async def outbox(self) -> list[Outbox]:
        async with self.bot.db.session() as session:
            return list((await session.exec(select(Outbox).where(Outbox.channel == "kakao"))).all())

    async def staff_reply(self, reference: str, text: str) -> None:
        """Kim answers in the ticket's thread in the department's Slack channel."""
        channel = self.slack.channel_id("dept-transport")
        [card] = [
            c for c in self.slack.messages(channel, top_level=True) if reference in str(c.blocks) + c.text
        ]
        written = self.slack.add_message(channel, text, user=KIM, thread_ts=card.ts)
        event = thread_reply_event(channel, card.ts, KIM, text, ts=written.ts, parent_user_id=SLACK_BOT)
        request = event_request(SLACK_SECRET, event)
        assert (
            await self.slack.post_to_app(str(self.client.make_url("/webhooks/slack")), *request)
        ).status == 200


@pytest.fixture
async def city(database: Database, tmp_path: Path) -> AsyncIterator[KakaoCity]:
    async with (
        FakeKakao(
            bot_id=BOT_ID, rest_api_key=KEY, secret_header=HEADER, skill_secret=SECRET, event=EVENT
        ) as kakao,
        FakeSlack(bot_token=SLACK_TOKEN) as slack,
    ):
        for name in ("dept-transport", "dept-housing", "dept-environment", "dept-triage", "intake-alerts"):
            slack.add_channel(name)
        slack.add_user(KIM, "Kim Minji")
        section = KakaoConfig(
            enabled=True,
            secret_header=HEADER,
            skill_secret=SECRET,
            bot_id=BOT_ID,
            rest_api_key=KEY,
            event_name=EVENT,
            api_base_url=kakao.base_url,
            timeout_seconds=1.0,
        )
        desk = SlackConfig(
            enabled=True, bot_token=SLACK_TOKEN, signing_secret=SLACK_SECRET, api_base_url=slack.api_url
        )
        config = with_channels(
            config_for_tests(tmp_path), kakao=section, slack=desk, public_url="https://city.example"
        )
        router_desk = config.router.desk.model_copy(update={"alerts_inbox": "#intake-alerts"})
        config = config.model_copy(update={"router": config.router.model_copy(update={"desk": router_desk})})
        bot = await bot_module.build(config, base_dir=ROOT, webchat=False, db=database)
        async with bot.running(sweeps=False), TestClient(TestServer(bot_module.make_app(bot))) as client:
            yield KakaoCity(bot, kakao, slack, client)
        assert kakao.violations == []


async def complaint(city: KakaoCity) -> str:
    answer = await city.say("가로등이 고장났어요 어두워요")
    assert answer.status == 200, answer.body
    match = REFERENCE.search(" ".join(answer.texts))
    assert match, answer.texts
    await until(lambda: city.slack.messages(city.slack.channel_id("dept-transport"), top_level=True))
    return match.group()


async def test_an_faq_question_is_answered_in_the_skill_response(city: KakaoCity) -> None:
    answer = await city.say("소파 버리는 방법")
    assert answer.status == 200 and not answer.use_callback
    assert any("대형 폐기물은 구청 누리집이나 주민센터에서 배출 신고" in t for t in answer.texts)
    assert ("상담원 연결", "0") in labels_of(answer.body)
    assert city.kakao.events == []  # an answer in the response costs nothing


async def test_a_complaint_gets_its_reference_department_and_due_time_in_the_response(
    city: KakaoCity,
) -> None:
    reference = await complaint(city)
    view = await city.bot.desk.show(reference)
    assert view.ticket.status == "forwarded" and view.ticket.department == "transport"
    assert view.ticket.due_at is not None
    [answer] = city.kakao.answers
    assert any(f"접수번호 {reference}: 교통도로과에 전달했습니다. 처리 예정:" in t for t in answer.texts)
    [row] = await city.outbox()
    assert row.status == OutboxStatus.SENT and row.provider_message_id == "answer"


async def test_a_staff_reply_in_slack_reaches_the_citizen_through_the_event_api(city: KakaoCity) -> None:
    reference = await complaint(city)
    await city.staff_reply(reference, "내일 오전에 수리하겠습니다.")
    await city.kakao.wait_for(lambda: city.kakao.events_to(CITIZEN), timeout=10)
    [event] = city.kakao.events_to(CITIZEN)
    assert (event.name, event.text) == (EVENT, f"[{reference}] 교통도로과: 내일 오전에 수리하겠습니다.")


async def test_a_request_without_the_secret_gets_403_and_stores_nothing(city: KakaoCity) -> None:
    answer = await city.say("소파 버리는 방법", secret="")
    assert answer.status == 403
    assert (await city.count(Message), await city.count(Contact), await city.count(Outbox)) == (0, 0, 0)


async def test_a_retried_skill_call_is_answered_once_with_one_ticket(city: KakaoCity) -> None:
    reference = await complaint(city)
    retry = await city.say("가로등이 고장났어요 어두워요")  # Kakao's retry of a call it gave up on
    assert retry.status == 200 and any(reference in t for t in retry.texts)
    async with city.bot.db.session() as session:
        inbound = (await session.exec(select(Message).where(Message.author == "citizen"))).all()
    assert (len(inbound), await city.count(Ticket)) == (1, 1)
    assert len(await city.outbox()) == 1  # the citizen was told once


async def test_a_citizen_who_blocked_the_channel_makes_the_update_fail(city: KakaoCity) -> None:
    reference = await complaint(city)
    city.kakao.blocked.add(CITIZEN)
    await city.staff_reply(reference, "내일 오전에 수리하겠습니다.")

    async def failed() -> list[Outbox]:
        return [r for r in await city.outbox() if r.status == OutboxStatus.FAILED]

    await until(failed)
    [row] = await failed()
    assert "blocked the channel" in (row.last_error or "")
    assert city.kakao.events_to(CITIZEN) == []


async def test_a_stop_word_stops_the_status_updates(city: KakaoCity) -> None:
    reference = await complaint(city)
    assert (await city.say("수신거부")).status == 200
    await city.staff_reply(reference, "내일 오전에 수리하겠습니다.")

    async def stopped() -> list[Outbox]:
        return [r for r in await city.outbox() if "opted out" in (r.last_error or "")]

    await until(stopped)
    assert city.kakao.events_to(CITIZEN) == []  # nothing paid for
    async with city.bot.db.session() as session:
        said = (await session.exec(select(Message).where(Message.author == "citizen"))).all()
    assert [m.text for m in said][-1] == "수신거부"
    assert all("callbackUrl" not in str(m.raw) for m in said)
