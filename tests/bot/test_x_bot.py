"""The whole bot on X: mentions and DMs polled from the fake X API through the real tweepy client,
public replies and DMs sent back; SQLite and PostgreSQL (the `database` fixture)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

import bot as bot_module
from channels.settings import RateLimitConfig
from channels.x_config import XConfig
from router import Staff
from store import Database
from tests.conftest import ROOT, config_for_tests, with_channels
from tests.fakes.x import FakeX
from tests.waiting import until

CITIZEN = "200"
REFERENCE = re.compile(r"\d{4}-\d{6}")


@pytest.fixture
async def fake() -> AsyncIterator[FakeX]:
    async with FakeX(consumer_secret="x-secret", me_id="100", me_username="city") as f:
        yield f


@asynccontextmanager
async def running_bot(
    tmp_path: Path, database: Database, fake: FakeX, *, patient: bool = False
) -> AsyncIterator[bot_module.Bot]:
    x = XConfig(
        enabled=True,
        **fake.client_kwargs,
        api_base_url=fake.base_url,
        mentions_poll_seconds=0.05,
        dm_poll_seconds=0.05,
        request_timeout_seconds=2,
        error_backoff_seconds=0.05,
        max_backoff_seconds=0.2,
        rate_limit_margin_seconds=0,
        rate_limit=RateLimitConfig(),  # X's real 100 posts / 15 min would make the test wait
    )
    config = with_channels(config_for_tests(tmp_path), x=x, patient=patient)
    bot = await bot_module.build(config, base_dir=ROOT, webchat=False, db=database)
    async with bot.running(sweeps=False):
        yield bot


def dms_to(fake: FakeX, user_id: str) -> list[str]:
    return [d.text for d in fake.dms if d.recipient_id == user_id]


async def test_a_public_complaint_gets_a_public_reference_and_the_details_by_dm(
    tmp_path: Path, database: Database, fake: FakeX
) -> None:
    async with running_bot(tmp_path, database, fake) as bot:
        mention = fake.add_mention(CITIZEN, "kim", "@city 가로등이 고장났어요 어두워요")
        await until(lambda: fake.tweets and dms_to(fake, CITIZEN))
        await asyncio.sleep(0.2)  # a few more polls and dispatcher rounds: nothing more may go out
        [reply] = fake.tweets
        assert reply.in_reply_to == mention
        found = REFERENCE.search(reply.text)
        assert found is not None, reply.text
        view = await bot.desk.show(found.group())
        assert view.ticket.department is not None
        department = bot.config.departments[view.ticket.department]

        # In public: the reference and the way to DM, nothing the citizen said, nothing about them.
        for private in ("가로등", "고장", "어두워요", "kim", *department.name.values()):
            assert private not in reply.text
        # By DM: the details.
        [details] = dms_to(fake, CITIZEN)
        assert found.group() in details and department.display_name("ko") in details
        assert view.contact.address == CITIZEN and len(view.messages) == 3  # in, public reply, DM


async def test_an_faq_question_by_dm_is_answered_by_dm(
    tmp_path: Path, database: Database, fake: FakeX
) -> None:
    async with running_bot(tmp_path, database, fake):
        fake.add_dm("201", "소파 버리는 방법", username="lee")
        await until(lambda: dms_to(fake, "201"))
        [answer] = dms_to(fake, "201")
        assert "대형 폐기물" in answer
        assert fake.tweets == []


async def test_a_staff_reply_reaches_the_citizen_by_dm(
    tmp_path: Path, database: Database, fake: FakeX
) -> None:
    async with running_bot(tmp_path, database, fake) as bot:
        fake.add_mention(CITIZEN, "kim", "@city 가로등이 고장났어요 어두워요")
        await until(lambda: fake.tweets and dms_to(fake, CITIZEN))
        found = REFERENCE.search(fake.tweets[0].text)
        assert found is not None
        await bot.desk.reply(
            found.group(), "내일 오전에 수리하겠습니다.", staff=Staff(id="cli:kim", name="kim")
        )
        await until(lambda: any("내일 오전에 수리하겠습니다." in t for t in dms_to(fake, CITIZEN)))
        assert len(fake.tweets) == 1  # staff words never go public


async def test_dms_closed_is_a_permanent_failure_on_the_ticket(
    tmp_path: Path, database: Database, fake: FakeX
) -> None:
    fake.dm_closed.add(CITIZEN)
    async with running_bot(tmp_path, database, fake) as bot:
        fake.add_mention(CITIZEN, "kim", "@city 가로등이 고장났어요 어두워요")
        await until(lambda: fake.tweets)
        found = REFERENCE.search(fake.tweets[0].text)
        assert found is not None

        async def failed() -> list[str]:
            view = await bot.desk.show(found.group())
            return [str(e.detail) for e in view.events if e.kind == "delivery_failed"]

        deadline = time.monotonic() + 8
        while not (events := await failed()):
            assert time.monotonic() < deadline, "no delivery_failed event"
            await asyncio.sleep(0.05)
        assert "403" in events[0] or "cannot send" in events[0]
        assert len(fake.of("dm_send")) == 1  # permanent: not retried
        assert fake.dms == []


async def test_an_outage_delays_but_loses_nothing(tmp_path: Path, database: Database, fake: FakeX) -> None:
    fake.dropping = True  # X unreachable: every connection drops
    async with running_bot(tmp_path, database, fake, patient=True) as bot:
        mention = fake.add_mention(CITIZEN, "kim", "@city 가로등이 고장났어요 어두워요")
        fake.add_dm("201", "소파 버리는 방법", username="lee")
        await until(lambda: len([r for r in fake.requests if r.status == 0]) >= 4)  # polls failed meanwhile
        # X comes back, but refuses the first few posts and DMs.
        fake.fail_next(3, 503, endpoint="tweets")
        fake.fail_next(3, 503, endpoint="dm_send")
        fake.dropping = False
        await until(lambda: fake.tweets and dms_to(fake, CITIZEN) and dms_to(fake, "201"))
        await asyncio.sleep(0.2)
        assert [t.in_reply_to for t in fake.tweets] == [mention]  # once, no double post
        assert len(dms_to(fake, CITIZEN)) == 1 and len(dms_to(fake, "201")) == 1
        assert [r.status for r in fake.of("tweets")] == [503, 503, 503, 201]
        found = REFERENCE.search(fake.tweets[0].text)
        assert found is not None
        assert (await bot.desk.show(found.group())).ticket.reference == found.group()


async def test_account_activity_webhooks_forged_refused_replayed_once(
    tmp_path: Path, database: Database, fake: FakeX
) -> None:
    import json

    from aiohttp.test_utils import TestClient, TestServer
    from sqlmodel import select

    from store import Message
    from tests.fakes.x import aaa_dm, crc_response, sign_body

    x = XConfig(
        enabled=True,
        mode="webhook",
        **fake.client_kwargs,
        api_base_url=fake.base_url,
        rate_limit=RateLimitConfig(),
    )
    config = with_channels(config_for_tests(tmp_path), x=x)
    bot = await bot_module.build(config, base_dir=ROOT, webchat=False, db=database)
    async with bot.running(sweeps=False), TestClient(TestServer(bot_module.make_app(bot))) as client:
        crc = await client.get("/webhooks/x", params={"crc_token": "challenge-1"})
        assert crc.status == 200 and await crc.json() == crc_response(fake.consumer_secret, "challenge-1")

        event = aaa_dm(
            "100",
            event_id="9001",
            sender_id=CITIZEN,
            recipient_id="100",
            text="소파 버리는 방법",
            sender_screen_name="kim",
        )
        body = json.dumps(event).encode()
        forged = await client.post(
            "/webhooks/x",
            data=body,
            headers={"x-twitter-webhooks-signature": sign_body("not-the-secret", body)},
        )
        assert forged.status == 403
        async with bot.db.session() as session:
            assert (await session.exec(select(Message))).all() == []  # a forged request leaves no trace

        headers = {
            "x-twitter-webhooks-signature": sign_body(fake.consumer_secret, body),
            "Content-Type": "application/json",
        }
        for _ in range(2):  # X retries a delivery it thinks failed
            assert (await client.post("/webhooks/x", data=body, headers=headers)).status == 200
        await until(lambda: dms_to(fake, CITIZEN))
        await asyncio.sleep(0.2)
        [answer] = dms_to(fake, CITIZEN)
        assert answer.startswith("대형 폐기물")  # the FAQ answer, by DM, once
        async with bot.db.session() as session:
            assert len([m for m in (await session.exec(select(Message))).all() if m.direction == "in"]) == 1
