"""The whole bot with its staff desk in Slack (a local stand-in for the Slack Web API that the real
slack_sdk and slack-bolt talk to; events and actions signed as Slack signs them) and citizens on the
in-memory channel; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

import bot as bot_module
from channels.memory import MemoryChannel
from channels.slack_config import SlackConfig
from store import Database
from tests.conftest import ROOT, config_for_tests, with_channels
from tests.fakes.slack import (
    FakeSlack,
    action_request,
    event_request,
    signed_headers,
    thread_reply_event,
    view_submission_request,
)
from tests.waiting import until

TOKEN = "xoxb-city-desk"
SECRET = "city-signing-secret-0123456789ab"
KIM = "U0KIM"
BOT = "U0BOT"  # the app's own user in the stand-in: the cards are its messages


@dataclass
class City:
    bot: bot_module.Bot
    citizen: MemoryChannel
    slack: FakeSlack
    client: TestClient

    async def deliver(self, request: tuple[bytes, dict[str, str]]) -> Any:
        return await self.slack.post_to_app(str(self.client.make_url("/webhooks/slack")), *request)

    def channel(self, name: str) -> str:
        return self.slack.channel_id(name)

    def cards(self, name: str) -> list[Any]:
        return self.slack.messages(self.channel(name), top_level=True)


@pytest.fixture
async def city(database: Database, tmp_path: Path) -> AsyncIterator[City]:
    async with FakeSlack(bot_token=TOKEN) as slack:
        for name in ("dept-transport", "dept-housing", "dept-environment", "dept-triage", "faq-review"):
            slack.add_channel(name)
        slack.add_channel("intake-alerts")
        slack.add_user(KIM, "Kim Minji")
        section = SlackConfig(
            enabled=True, bot_token=TOKEN, signing_secret=SECRET, api_base_url=slack.api_url
        )
        config = with_channels(config_for_tests(tmp_path), slack=section)
        desk = config.router.desk.model_copy(
            update={"review_inbox": "#faq-review", "alerts_inbox": "#intake-alerts"}
        )
        config = config.model_copy(update={"router": config.router.model_copy(update={"desk": desk})})
        citizen = MemoryChannel()
        bot = await bot_module.build(config, base_dir=ROOT, channels=[citizen], webchat=False, db=database)
        async with bot.running(sweeps=False), TestClient(TestServer(bot_module.make_app(bot))) as client:
            yield City(bot, citizen, slack, client)


def text_of(posted: Any) -> str:
    return json.dumps(posted.blocks, ensure_ascii=False) + posted.text


async def complaint(city: City) -> tuple[str, str, str]:
    """A citizen's complaint; its card in the transport channel: (reference, channel id, card ts)."""
    receipt = await city.citizen.push("가로등이 고장났어요 어두워요", sender="+821055501234")
    assert receipt.reference
    await city.citizen.pop()
    await until(lambda: city.cards("dept-transport"))
    [card] = city.cards("dept-transport")
    return receipt.reference, city.channel("dept-transport"), card.ts


async def test_a_complaint_is_a_card_in_its_departments_channel(city: City) -> None:
    reference, _, _ = await complaint(city)
    [card] = city.cards("dept-transport")
    shown = text_of(card)
    assert reference in shown and "가로등이 고장났어요 어두워요" in shown
    assert "5550" not in shown and "1234" in shown  # the number is masked
    assert city.cards("dept-housing") == []


async def test_a_thread_reply_reaches_the_citizen_and_is_marked_delivered(city: City) -> None:
    reference, channel, card = await complaint(city)
    written = city.slack.add_message(channel, "내일 오전에 수리하겠습니다", user=KIM, thread_ts=card)
    reply = thread_reply_event(channel, card, KIM, written.text, ts=written.ts, parent_user_id=BOT)
    assert (await city.deliver(event_request(SECRET, reply))).status == 200
    told = await city.citizen.pop()
    assert told.text == f"[{reference}] 교통도로과: 내일 오전에 수리하겠습니다"
    await until(lambda: "white_check_mark" in city.slack.reactions.get((channel, written.ts), []))
    view = await city.bot.desk.show(reference)
    assert [e.actor_name for e in view.events if e.kind == "reply"] == ["Kim Minji"]


async def test_a_note_stays_internal(city: City) -> None:
    reference, channel, card = await complaint(city)
    note = thread_reply_event(channel, card, KIM, "note: 현장 사진 먼저 확인", parent_user_id=BOT)
    assert (await city.deliver(event_request(SECRET, note))).status == 200
    await asyncio.sleep(0.3)  # give the bot a moment: nothing may go out
    assert city.citizen.pending() == 0
    view = await city.bot.desk.show(reference)
    assert [e.detail["text"] for e in view.events if e.kind == "note"] == ["현장 사진 먼저 확인"], [
        (e.kind, e.detail) for e in view.events
    ]


async def test_a_public_note_shows_on_the_tickets_public_page_only(city: City) -> None:
    reference, channel, card = await complaint(city)
    note = thread_reply_event(channel, card, KIM, "public: 수요일에 보수 예정입니다", parent_user_id=BOT)
    assert (await city.deliver(event_request(SECRET, note))).status == 200

    async def public_notes() -> list[tuple[str | None, object]]:
        view = await city.bot.desk.show(reference)
        return [(e.actor_name, e.detail["text"]) for e in view.events if e.kind == "public_note"]

    await until(public_notes)
    assert await public_notes() == [("Kim Minji", "수요일에 보수 예정입니다")]
    await asyncio.sleep(0.3)  # nothing may go out to the citizen
    assert city.citizen.pending() == 0
    page = await city.client.get(f"/status/{reference}?lang=ko")
    assert page.status == 200 and "수요일에 보수 예정입니다" in await page.text()


async def test_claim_reassign_and_resolve_change_the_ticket_update_the_card_and_tell_the_citizen(
    city: City,
) -> None:
    reference, channel, card = await complaint(city)
    press = action_request(
        SECRET, action_id="claim", value=reference, user_id=KIM, channel_id=channel, message_ts=card
    )
    assert (await city.deliver(press)).status == 200
    await until(lambda: "Kim Minji" in text_of(city.cards("dept-transport")[0]))
    assert (await city.bot.desk.show(reference)).ticket.status == "in_progress"
    assert "담당자가 처리하고 있습니다" in (await city.citizen.pop()).text

    press = action_request(
        SECRET, action_id="reassign", value=reference, user_id=KIM, channel_id=channel, message_ts=card
    )
    assert (await city.deliver(press)).status == 200
    [opened] = city.slack.views
    submit = view_submission_request(
        SECRET,
        callback_id=opened.view["callback_id"],
        view=opened.view,
        user_id=KIM,
        values={
            "department": {"value": {"type": "static_select", "selected_option": {"value": "housing"}}},
            "reason": {"value": "건물 외벽 조명이라 주택건축과 소관"},
        },
    )
    assert (await city.deliver(submit)).status == 200
    assert "주택건축과" in (await city.citizen.pop()).text
    await until(lambda: city.cards("dept-housing"))
    housing, housing_card = city.channel("dept-housing"), city.cards("dept-housing")[0].ts

    press = action_request(
        SECRET, action_id="resolve", value=reference, user_id=KIM, channel_id=housing, message_ts=housing_card
    )
    assert (await city.deliver(press)).status == 200
    resolve_form = city.slack.views[-1]
    submit = view_submission_request(
        SECRET,
        callback_id=resolve_form.view["callback_id"],
        view=resolve_form.view,
        user_id=KIM,
        values={"text": {"value": "조명을 교체했습니다"}},
    )
    assert (await city.deliver(submit)).status == 200
    told = await city.citizen.pop()
    assert "조명을 교체했습니다" in told.text and [b.value for b in told.buttons] == ["1", "2", "3", "4", "5"]
    assert (await city.bot.desk.show(reference)).ticket.status == "resolved"
    resolved = city.bot.lifecycle.notices.status_name("resolved", "ko")
    await until(lambda: resolved in text_of(city.cards("dept-housing")[0]))  # the card, updated in place


async def test_a_review_items_send_answers_the_citizen(city: City) -> None:
    receipt = await city.citizen.push("대형 쓰레기 버리는 법")
    await city.citizen.pop()  # "received": a person checks the likely answer today
    await until(lambda: city.cards("faq-review"))
    [item] = city.cards("faq-review")
    send = next(
        e
        for b in item.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "review_send"
    )
    press = action_request(
        SECRET,
        action_id="review_send",
        value=send["value"],
        block_id=next(b for b in item.blocks if b["type"] == "actions")["block_id"],
        user_id=KIM,
        channel_id=city.channel("faq-review"),
        message_ts=item.ts,
    )
    assert (await city.deliver(press)).status == 200
    assert (await city.citizen.pop()).text.startswith("대형 폐기물")
    assert receipt.reference
    assert (await city.bot.desk.show(receipt.reference)).ticket.status == "answered"


async def test_a_forged_request_is_refused_and_a_retried_event_acts_once(city: City) -> None:
    reference, channel, card = await complaint(city)
    reply = thread_reply_event(channel, card, KIM, "곧 갑니다", parent_user_id=BOT)
    body, headers = event_request(SECRET, reply, event_id="Ev0RETRY")
    forged = signed_headers("not-the-secret", body)
    assert (await city.deliver((body, {**headers, **forged}))).status in (401, 403)
    await asyncio.sleep(0.2)
    assert city.citizen.pending() == 0

    assert (await city.deliver((body, headers))).status == 200
    retried = {**headers, "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    assert (await city.deliver((body, retried))).status == 200
    assert (await city.citizen.pop()).text.endswith("곧 갑니다")
    await asyncio.sleep(0.3)
    assert city.citizen.pending() == 0  # once
    view = await city.bot.desk.show(reference)
    assert [e.kind for e in view.events].count("reply") == 1


async def test_the_card_shows_the_citizens_photo_from_a_signed_link(city: City) -> None:
    from urllib.parse import urlsplit

    from channels.base import Attachment

    city.citizen.files["https://provider.example/p1"] = (b"\xff\xd8 the pothole", "image/jpeg")
    photo = Attachment("https://provider.example/p1", "image/jpeg")
    receipt = await city.citizen.push("도로에 큰 구멍이 있어요 위험해요", attachments=(photo,))
    assert receipt.reference
    await until(lambda: city.cards("dept-transport"))
    [card] = city.cards("dept-transport")
    [image] = [b for b in card.blocks if b["type"] == "image"]
    link = urlsplit(image["image_url"])
    assert f"{link.scheme}://{link.netloc}" == city.bot.config.server.public_url

    async def fetched() -> bytes:
        response = await city.client.get(f"{link.path}?{link.query}")
        return await response.read() if response.status == 200 else b""

    deadline = time.monotonic() + 10
    while (body := await fetched()) != b"\xff\xd8 the pothole":
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)
    forged = link.query.replace("sig=", "sig=0")
    assert (await city.client.get(f"{link.path}?{forged}")).status == 403
    expired = city.bot.media_links.link(int(link.path.rsplit("/", 1)[1]), now=time.time() - 10 * 86400)
    assert (await city.client.get(urlsplit(expired).path + "?" + urlsplit(expired).query)).status == 403
