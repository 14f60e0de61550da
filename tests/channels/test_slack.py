"""The Slack staff desk against the fake Slack Web API (real slack_sdk and slack-bolt underneath), with
requests signed as Slack signs them and a recording host in place of the router."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from channels.base import (
    DeliveryReport,
    InboundMessage,
    OutboundMessage,
    PermanentSendError,
    Receipt,
    StaffAction,
    StaffResult,
    TransientSendError,
)
from channels.desk import from_json as desk_from_json
from channels.slack import SlackChannel
from channels.slack_config import SlackConfig
from tests.fakes.slack import (
    SIGNATURE_HEADER,
    FakeSlack,
    action_request,
    app_message_event,
    bot_message_event,
    command_request,
    event_request,
    thread_reply_event,
    url_verification_request,
    view_submission_request,
)

TOKEN = "xoxb-1111-2222-fake"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
STAFF = "U123"
OTHER = "U456"
REF = "2026-000123"
DEPARTMENTS = [["transport", "Transport and Roads"], ["environment", "Environment and Waste"]]


class RecordingHost:
    """The router's side of the contract, in memory: cursors in a dict, staff actions recorded."""

    def __init__(self) -> None:
        self.memory: dict[tuple[str, str], str] = {}
        self.actions: list[StaffAction] = []
        self.result = StaffResult(ok=True, message="Done")

    async def intake(self, message: InboundMessage) -> Receipt:
        raise AssertionError("the staff desk never takes citizens' messages")

    async def delivery_report(self, report: DeliveryReport) -> bool:
        return False

    async def recall(self, channel: str, name: str) -> str | None:
        return self.memory.get((channel, name))

    async def remember(self, channel: str, name: str, value: str) -> None:
        self.memory[(channel, name)] = value

    async def lead(self, job: str) -> bool:
        return True

    async def staff_action(self, action: StaffAction) -> StaffResult:
        self.actions.append(action)
        return self.result


class Desk:
    """A started SlackChannel behind a local aiohttp server, and what Slack would deliver to it."""

    def __init__(
        self, fake: FakeSlack, host: RecordingHost, channel: SlackChannel, client: TestClient
    ) -> None:
        self.fake, self.host, self.channel, self.client = fake, host, channel, client

    @property
    def url(self) -> str:
        return str(self.client.make_url("/webhooks/slack"))

    async def deliver(self, request: tuple[bytes, dict[str, str]]) -> Any:
        return await self.fake.post_to_app(self.url, *request)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(bot_token=TOKEN) as server:
        server.add_user(STAFF, "Kim Minji", display_name="minji")
        server.add_user(OTHER, "Lee Joon")
        yield server


@pytest.fixture
async def desk(fake: FakeSlack) -> AsyncIterator[Desk]:
    host = RecordingHost()
    config = SlackConfig(enabled=True, bot_token=TOKEN, signing_secret=SECRET, api_base_url=fake.api_url)
    channel = SlackChannel(config, public_url="https://city.example")
    await channel.start(host)
    app = web.Application()
    app.add_routes(channel.routes())
    client = TestClient(TestServer(app))
    await client.start_server()
    yield Desk(fake, host, channel, client)
    await client.close()
    await channel.stop()


def card(reference: str = REF, **overrides: Any) -> dict[str, Any]:
    desk = {
        "kind": "card",
        "reference": reference,
        "status": "forwarded",
        "status_name": "Forwarded",
        "department": "transport",
        "department_name": "Transport and Roads",
        "origin": "sms",
        "language": "ko",
        "category": "streetlight",
        "text": "가로등이 꺼졌어요 <script> & more",
        "photos": [17, 18],
        "contact": "+82*****5678",
        "due": "Mon 24 Nov 18:00",
        "assignee": None,
        "sensitive": False,
        "actions": ["claim", "resolve", "reassign"],
        "departments": DEPARTMENTS,
    }
    desk.update(overrides)
    return desk


_keys = iter(range(1, 1_000_000))


def outbound(recipient: str, desk: dict[str, Any], text: str = "fallback") -> OutboundMessage:
    """A desk row as the dispatcher hands it over: read back from its JSON in the outbox."""
    return OutboundMessage(
        channel="slack",
        recipient=recipient,
        text=text,
        idempotency_key=f"desk-{desk['kind']}-{next(_keys)}",
        reply_to=desk.get("reference"),
        desk=desk_from_json(desk),
    )


def block_texts(blocks: list[dict[str, Any]] | None) -> str:
    """Every text of a message's blocks, to search in."""
    return json.dumps(blocks, ensure_ascii=False)


def buttons(blocks: list[dict[str, Any]] | None) -> list[tuple[str, str, str]]:
    return [
        (element["action_id"], element["value"], block["block_id"])
        for block in blocks or []
        if block["type"] == "actions"
        for element in block["elements"]
    ]


async def post_card(desk: Desk, name: str = "dept-transport", **overrides: Any) -> tuple[str, str]:
    try:
        channel_id = desk.fake.channel_id(name)
    except KeyError:
        channel_id = desk.fake.add_channel(name)
    result = await desk.channel.send(outbound(f"#{name}", card(**overrides)))
    assert result.provider_message_id is not None
    return channel_id, result.provider_message_id


# --- sending -------------------------------------------------------------------------------------------


async def test_a_card_is_posted_to_its_channel_then_updated_in_place(desk: Desk) -> None:
    other = desk.fake.add_channel("dept-parks")
    channel_id, ts = await post_card(desk)
    (posted,) = desk.fake.messages(channel_id)
    assert posted.ts == ts and desk.fake.messages(other) == []
    shown = block_texts(posted.blocks)
    for fact in (REF, "Forwarded", "Transport and Roads", "sms", "ko", "streetlight", "+82*****5678"):
        assert fact in shown
    assert "Mon 24 Nov 18:00" in shown
    assert "&lt;script&gt; &amp; more" in shown  # the citizen's text is not markup
    assert "2 photo(s)" in shown and "`python bot.py tickets media 17`" in shown
    assert [b[:2] for b in buttons(posted.blocks)] == [("claim", REF), ("resolve", REF), ("reassign", REF)]
    assert desk.host.memory[("slack", f"thread:{REF}")] == f"{channel_id}:{ts}"
    assert desk.host.memory[("slack", f"ts:{channel_id}:{ts}")] == REF

    again = await desk.channel.send(
        outbound(
            "#dept-transport", card(status_name="In progress", assignee="Kim Minji", actions=["resolve"])
        )
    )
    assert again.provider_message_id == ts
    (updated,) = desk.fake.messages(channel_id)
    assert updated.updated == 1
    assert "In progress" in block_texts(updated.blocks) and "Kim Minji" in block_texts(updated.blocks)
    assert [b[0] for b in buttons(updated.blocks)] == ["resolve"]
    # Channel names were resolved once and kept.
    assert len(desk.fake.of("conversations.list")) == 1


async def test_a_sensitive_card_is_marked(desk: Desk) -> None:
    channel_id, _ = await post_card(desk, "restricted-integrity", sensitive=True, actions=[])
    (posted,) = desk.fake.messages(channel_id)
    assert "Sensitive" in block_texts(posted.blocks) and buttons(posted.blocks) == []


async def test_after_a_reassignment_the_new_inbox_gets_its_own_card(desk: Desk) -> None:
    first, old_ts = await post_card(desk)
    second, new_ts = await post_card(desk, "dept-environment")
    assert first != second and new_ts != old_ts
    assert desk.fake.message(first, old_ts).updated == 0  # type: ignore[union-attr]
    assert desk.host.memory[("slack", f"thread:{REF}")] == f"{second}:{new_ts}"
    # Staff replying under the old card are still understood.
    assert desk.host.memory[("slack", f"ts:{first}:{old_ts}")] == REF


async def test_a_deleted_card_is_posted_again(desk: Desk) -> None:
    channel_id, ts = await post_card(desk)
    desk.fake._messages[channel_id].clear()  # someone deleted the card
    _, new_ts = await post_card(desk)
    assert new_ts != ts and [m.ts for m in desk.fake.messages(channel_id)] == [new_ts]
    assert desk.host.memory[("slack", f"thread:{REF}")] == f"{channel_id}:{new_ts}"


async def test_thread_lines_land_in_the_cards_thread(desk: Desk) -> None:
    channel_id, ts = await post_card(desk)
    line = {"kind": "thread", "reference": REF, "author": "citizen", "author_name": None}
    await desk.channel.send(
        outbound(channel_id, {**line, "text": "아직도 꺼져 있어요", "photos": [21], "mention": None})
    )
    await desk.channel.send(
        outbound(
            "#dept-transport",
            {**line, "author": "system", "text": "Due in 1 hour", "photos": [], "mention": "U0LEAD"},
        )
    )
    first, second = desk.fake.thread(channel_id, ts)
    assert first.text.startswith("*Citizen:* 아직도 꺼져 있어요") and "tickets media 21" in first.text
    assert second.text.startswith("<@U0LEAD> *System:* Due in 1 hour")
    assert len(desk.fake.messages(channel_id, top_level=True)) == 1


async def test_a_mark_reacts_on_the_staff_message(desk: Desk) -> None:
    channel_id, ts = await post_card(desk)
    good = desk.fake.add_message(channel_id, "Fixed tomorrow", user=STAFF, thread_ts=ts)
    bad = desk.fake.add_message(channel_id, "Call us", user=STAFF, thread_ts=ts)
    mark = {"kind": "mark", "reference": REF}
    await desk.channel.send(
        outbound(channel_id, {**mark, "source": good.ts, "delivered": True, "detail": "sent"})
    )
    # A retry after the reaction went in still counts as sent.
    await desk.channel.send(
        outbound(channel_id, {**mark, "source": good.ts, "delivered": True, "detail": "sent"})
    )
    await desk.channel.send(
        outbound(channel_id, {**mark, "source": bad.ts, "delivered": False, "detail": "opted out (21610)"})
    )
    assert desk.fake.reactions[(channel_id, good.ts)] == ["white_check_mark"]
    assert desk.fake.reactions[(channel_id, bad.ts)] == ["x"]
    assert "opted out (21610)" in desk.fake.thread(channel_id, ts)[-1].text


async def test_a_review_item_has_send_and_edit(desk: Desk) -> None:
    review_id = desk.fake.add_channel("desk-review")
    item = {
        "kind": "review",
        "reference": REF,
        "question": "소파는 어떻게 버리나요?",
        "language": "ko",
        "due": "today 18:00",
        "suggestions": [
            {
                "entry": "bulky-waste",
                "score": 0.71,
                "answer": "Register bulky waste with your district office.",
            },
            {"entry": "recycling", "score": 0.42, "answer": "Recycling goes out on Tuesdays."},
        ],
    }
    await desk.channel.send(outbound("#desk-review", item))
    (posted,) = desk.fake.messages(review_id)
    shown = block_texts(posted.blocks)
    assert "소파는 어떻게 버리나요?" in shown and "Register bulky waste" in shown and "Tuesdays" in shown
    assert [b[:2] for b in buttons(posted.blocks)] == [
        ("review_send", "bulky-waste"),
        ("review_send", "recycling"),
        ("review_edit", REF),
    ]


async def test_an_alert_is_a_plain_message(desk: Desk) -> None:
    alerts = desk.fake.add_channel("desk-alerts")
    result = await desk.channel.send(
        outbound("#desk-alerts", {"kind": "alert", "text": "SMS to +82... failed"})
    )
    (posted,) = desk.fake.messages(alerts)
    assert (posted.text, posted.blocks, posted.ts) == (
        "SMS to +82... failed",
        None,
        result.provider_message_id,
    )


async def test_429_is_transient_with_retry_after(desk: Desk) -> None:
    desk.fake.add_channel("desk-alerts")
    desk.fake.limit("chat.postMessage", per_channel_per_second=1)
    await desk.channel.send(outbound("#desk-alerts", {"kind": "alert", "text": "one"}))
    with pytest.raises(TransientSendError) as caught:
        await desk.channel.send(outbound("#desk-alerts", {"kind": "alert", "text": "two"}))
    assert caught.value.retry_after == 1.0


async def test_outages_are_transient(desk: Desk) -> None:
    desk.fake.add_channel("desk-alerts")
    desk.fake.fail_next(1, status=500, endpoint="chat.postMessage")
    with pytest.raises(TransientSendError):
        await desk.channel.send(outbound("#desk-alerts", {"kind": "alert", "text": "x"}))
    desk.fake.fail_next(1, status=200, endpoint="chat.postMessage", error="internal_error")
    with pytest.raises(TransientSendError):
        await desk.channel.send(outbound("#desk-alerts", {"kind": "alert", "text": "x"}))
    desk.fake.down = True
    with pytest.raises(TransientSendError):
        await desk.channel.send(outbound("#desk-alerts", {"kind": "alert", "text": "x"}))


async def test_refusals_are_permanent(desk: Desk, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(PermanentSendError, match="channel_not_found"):
        await desk.channel.send(outbound("#dept-nowhere", {"kind": "alert", "text": "x"}))
    with pytest.raises(PermanentSendError, match="channel_not_found"):
        await desk.channel.send(outbound("C0UNKNOWN1", {"kind": "alert", "text": "x"}))
    outside = desk.fake.add_channel("dept-parks")
    desk.fake.not_member.add(outside)
    with pytest.raises(PermanentSendError, match="not_in_channel"):
        await desk.channel.send(outbound("#dept-parks", {"kind": "alert", "text": "x"}))
    desk.fake.fail_next(1, status=200, error="invalid_auth")
    with pytest.raises(PermanentSendError, match="invalid_auth"):
        await desk.channel.send(outbound(outside, {"kind": "alert", "text": "x"}))
    assert any("SLACK_BOT_TOKEN" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


# --- after a crash: did it reach Slack? -----------------------------------------------------------------


def tagged(key: str) -> dict[str, Any]:
    return {"event_type": "intake_outbox", "event_payload": {"key": key}}


@asynccontextmanager
async def restarted(desk: Desk) -> AsyncIterator[SlackChannel]:
    """The channel of a new process (nothing in memory); the cursors are in the store, so they stay."""
    config = SlackConfig(enabled=True, bot_token=TOKEN, signing_secret=SECRET, api_base_url=desk.fake.api_url)
    channel = SlackChannel(config, public_url="https://city.example")
    await channel.start(desk.host)
    try:
        yield channel
    finally:
        await channel.stop()


async def test_every_post_carries_the_rows_key_as_metadata(desk: Desk) -> None:
    review_id = desk.fake.add_channel("desk-review")
    card_row = outbound("#dept-transport", card())
    channel_id = desk.fake.add_channel("dept-transport")
    await desk.channel.send(card_row)
    line = outbound(channel_id, {"kind": "thread", "reference": REF, "author": "system", "text": "Due soon"})
    await desk.channel.send(line)
    staff = desk.fake.add_message(
        channel_id, "Call us", user=STAFF, thread_ts=desk.fake.messages(channel_id)[0].ts
    )
    mark = outbound(channel_id, {"kind": "mark", "reference": REF, "source": staff.ts, "delivered": False})
    await desk.channel.send(mark)
    review = outbound(
        "#desk-review", {"kind": "review", "reference": REF, "question": "?", "suggestions": []}
    )
    await desk.channel.send(review)
    posted_card, posted_line, _, posted_note = desk.fake.messages(channel_id)
    assert posted_card.metadata == tagged(card_row.idempotency_key)
    assert posted_line.metadata == tagged(line.idempotency_key)
    assert posted_note.metadata == tagged(mark.idempotency_key)
    assert desk.fake.messages(review_id)[0].metadata == tagged(review.idempotency_key)


async def test_a_post_that_reached_slack_is_found_by_its_key(desk: Desk) -> None:
    assert SlackChannel.can_find_sent
    alerts = desk.fake.add_channel("desk-alerts")
    since = datetime.now(UTC)
    alert = outbound("#desk-alerts", {"kind": "alert", "text": "SMS to +82... failed"})
    sent = await desk.channel.send(alert)  # ... and the process died before recording it
    other = outbound("#desk-alerts", {"kind": "alert", "text": "SMS to +82... failed"})  # same text
    async with restarted(desk) as channel:
        assert await channel.find_sent(alert, since=since) == sent
        assert await channel.find_sent(other, since=since) is None
    (call, _) = desk.fake.of("conversations.history")
    assert call.query["channel"] == alerts and call.query["include_all_metadata"] in ("1", "true")
    assert since.timestamp() - 61 < float(call.query["oldest"]) < since.timestamp() - 59


async def test_a_found_card_is_recorded_as_a_send_records_it(desk: Desk) -> None:
    since = datetime.now(UTC)
    row = outbound("#dept-transport", card())
    channel_id = desk.fake.add_channel("dept-transport")
    sent = await desk.channel.send(row)
    desk.host.memory.clear()  # the process died between the post and recording where the card is
    async with restarted(desk) as channel:
        assert await channel.find_sent(row, since=since) == sent
    assert desk.host.memory[("slack", f"thread:{REF}")] == f"{channel_id}:{sent.provider_message_id}"
    assert desk.host.memory[("slack", f"ts:{channel_id}:{sent.provider_message_id}")] == REF


async def test_a_thread_line_is_looked_for_in_the_cards_thread(desk: Desk) -> None:
    channel_id, card_ts = await post_card(desk)
    since = datetime.now(UTC)
    line = outbound(channel_id, {"kind": "thread", "reference": REF, "author": "citizen", "text": "아직도요"})
    async with restarted(desk) as channel:
        assert await channel.find_sent(line, since=since) is None  # not sent yet
        sent = await desk.channel.send(line)
        assert await channel.find_sent(line, since=since) == sent
    calls = desk.fake.of("conversations.replies")
    assert len(calls) == 2 and all(c.query["ts"] == card_ts for c in calls)
    assert desk.fake.of("conversations.history") == []


async def test_what_went_before_the_attempt_is_not_taken_for_it(desk: Desk) -> None:
    desk.fake.add_channel("desk-alerts")
    alert = outbound("#desk-alerts", {"kind": "alert", "text": "x"})
    await desk.channel.send(alert)
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await desk.channel.find_sent(alert, since=later) is None


async def test_a_card_update_and_a_reaction_are_simply_sent_again(desk: Desk) -> None:
    channel_id, card_ts = await post_card(desk)
    since = datetime.now(UTC)
    update = outbound("#dept-transport", card(status_name="In progress"))
    await desk.channel.send(update)  # chat.update: no new message to find
    assert await desk.channel.find_sent(update, since=since) is None
    assert (await desk.channel.send(update)).provider_message_id == card_ts  # again: the same card
    assert len(desk.fake.messages(channel_id)) == 1
    staff = desk.fake.add_message(channel_id, "Fixed", user=STAFF, thread_ts=card_ts)
    calls = len(desk.fake.requests)
    good = outbound(channel_id, {"kind": "mark", "reference": REF, "source": staff.ts, "delivered": True})
    assert await desk.channel.find_sent(good, since=since) is None
    assert len(desk.fake.requests) == calls  # not even asked
    bad = outbound(channel_id, {"kind": "mark", "reference": REF, "source": staff.ts, "delivered": False})
    assert await desk.channel.find_sent(bad, since=since) is None
    await desk.channel.send(bad)
    found = await desk.channel.find_sent(bad, since=since)
    assert found is not None and found.provider_message_id == staff.ts  # what send returns for a mark


async def test_slack_unable_to_answer_is_a_send_error(desk: Desk) -> None:
    alerts = desk.fake.add_channel("desk-alerts")
    alert = outbound(alerts, {"kind": "alert", "text": "x"})
    since = datetime.now(UTC)
    desk.fake.down = True
    with pytest.raises(TransientSendError):
        await desk.channel.find_sent(alert, since=since)
    desk.fake.down = False
    desk.fake.limit("conversations.history", per_minute=1)  # Slack's tier for apps outside its Marketplace
    assert await desk.channel.find_sent(alert, since=since) is None
    with pytest.raises(TransientSendError) as limited:
        await desk.channel.find_sent(alert, since=since)
    assert limited.value.retry_after is not None and limited.value.retry_after > 0
    desk.fake.not_member.add(alerts)
    desk.fake.limit("conversations.history")
    with pytest.raises(PermanentSendError, match="not_in_channel"):
        await desk.channel.find_sent(alert, since=since)


# --- staff -> router -------------------------------------------------------------------------------------


async def test_thread_replies_become_staff_actions(desk: Desk) -> None:
    channel_id, ts = await post_card(desk)
    for text in ("We will fix it tomorrow", "And thanks for the photo"):
        reply = desk.fake.add_message(channel_id, text, user=STAFF, thread_ts=ts)
        answer = await desk.deliver(
            event_request(SECRET, thread_reply_event(channel_id, ts, STAFF, text, ts=reply.ts))
        )
        assert answer.status == 200
    first, second = desk.host.actions
    assert (first.kind, first.staff_id, first.staff_name, first.reference, first.text, first.place) == (
        "reply",
        f"slack:{STAFF}",
        "Kim Minji",
        REF,
        "We will fix it tomorrow",
        channel_id,
    )
    assert first.source_id == desk.fake.thread(channel_id, ts)[0].ts
    assert second.text == "And thanks for the photo"
    assert len(desk.fake.of("users.info")) == 1  # the name is kept


async def test_a_note_is_internal(desk: Desk) -> None:
    channel_id, ts = await post_card(desk)
    await desk.deliver(
        event_request(SECRET, thread_reply_event(channel_id, ts, STAFF, "NOTE: called the contractor"))
    )
    (action,) = desk.host.actions
    assert (action.kind, action.text) == ("note", "called the contractor")


async def test_a_public_note_is_marked_by_its_own_prefix(desk: Desk) -> None:
    channel_id, ts = await post_card(desk)
    for text in ("public: Crew booked for Wednesday", "Public:no space needed", "publicity is a reply"):
        await desk.deliver(event_request(SECRET, thread_reply_event(channel_id, ts, STAFF, text)))
    assert [(a.kind, a.text) for a in desk.host.actions] == [
        ("public_note", "Crew booked for Wednesday"),
        ("public_note", "no space needed"),
        ("reply", "publicity is a reply"),
    ]
    hint = block_texts(desk.fake.messages(channel_id)[0].blocks)
    assert "`note:` for an internal note" in hint and "`public:` for a note shown on" in hint


async def test_the_prefixes_are_configurable_and_the_longer_one_wins(fake: FakeSlack) -> None:
    host = RecordingHost()
    config = SlackConfig(
        enabled=True,
        bot_token=TOKEN,
        signing_secret=SECRET,
        api_base_url=fake.api_url,
        note_prefix="memo:",
        public_prefix="memo:public:",
    )
    channel = SlackChannel(config, public_url="https://city.example")
    await channel.start(host)
    app = web.Application()
    app.add_routes(channel.routes())
    async with TestClient(TestServer(app)) as client:
        desk = Desk(fake, host, channel, client)
        channel_id, ts = await post_card(desk)
        for text in ("memo:public: shown to all", "memo: kept inside"):
            await desk.deliver(event_request(SECRET, thread_reply_event(channel_id, ts, STAFF, text)))
        hint = block_texts(fake.messages(channel_id)[0].blocks)
    await channel.stop()
    assert [(a.kind, a.text) for a in host.actions] == [
        ("public_note", "shown to all"),
        ("note", "kept inside"),
    ]
    assert "`memo:` for an internal note" in hint and "`memo:public:` for a note shown on" in hint


def test_the_public_prefix_is_checked() -> None:
    with pytest.raises(ValueError, match="public_prefix must not be empty"):
        SlackConfig(public_prefix="  ")
    with pytest.raises(ValueError, match="public_prefix must differ from note_prefix"):
        SlackConfig(note_prefix="Note:", public_prefix="note: ")
    assert SlackConfig().public_prefix == "public:"


async def test_bots_the_app_itself_and_other_threads_are_ignored(desk: Desk) -> None:
    channel_id, ts = await post_card(desk)
    stray = desk.fake.add_message(channel_id, "lunch?", user=OTHER)
    for event in (
        bot_message_event(channel_id, "CI passed", bot_id="B0OTHER", thread_ts=ts),
        app_message_event(channel_id, "Citizen: hello", thread_ts=ts),
        # another app's post (modern apps' messages have a user and a bot_id, no subtype)
        app_message_event(channel_id, "deploy done", thread_ts=ts, bot_id="B0OTHER", user="U0OTHERBOT"),
        {**thread_reply_event(channel_id, ts, "U0BOT", "from the app's user")},
        thread_reply_event(channel_id, stray.ts, STAFF, "a chat under another message"),
        {**thread_reply_event(channel_id, ts, STAFF, "edited"), "subtype": "message_changed"},
        thread_reply_event(channel_id, ts, STAFF, "top level", ts=ts),  # the card's own ts: not a reply
    ):
        answer = await desk.deliver(event_request(SECRET, event))
        assert answer.status == 200
    assert desk.host.actions == []
    # One more, from a person, does act (so the ignoring above was not an accident of setup).
    await desk.deliver(event_request(SECRET, thread_reply_event(channel_id, ts, OTHER, "on it")))
    assert [a.staff_name for a in desk.host.actions] == ["Lee Joon"]


async def test_a_retried_event_acts_once(desk: Desk) -> None:
    channel_id, ts = await post_card(desk)
    event = thread_reply_event(channel_id, ts, STAFF, "Fixed")
    assert (await desk.deliver(event_request(SECRET, event, event_id="Ev0001"))).status == 200
    retry = event_request(SECRET, event, event_id="Ev0001", retry_num=1, retry_reason="http_timeout")
    assert (await desk.deliver(retry)).status == 200
    assert (await desk.deliver(event_request(SECRET, event, event_id="Ev0001"))).status == 200
    assert len(desk.host.actions) == 1
    await desk.deliver(event_request(SECRET, event, event_id="Ev0002"))
    assert len(desk.host.actions) == 2


async def test_a_forged_request_is_refused_and_reaches_nothing(desk: Desk) -> None:
    channel_id, ts = await post_card(desk)
    body, headers = event_request(SECRET, thread_reply_event(channel_id, ts, STAFF, "forged"))
    forged = dict(headers, **{SIGNATURE_HEADER: "v0=" + "0" * 64})
    assert (await desk.fake.post_to_app(desk.url, body, forged)).status == 403
    wrong = event_request("another-secret", thread_reply_event(channel_id, ts, STAFF, "x"))
    assert (await desk.deliver(wrong)).status == 403
    stale = event_request(SECRET, thread_reply_event(channel_id, ts, STAFF, "x"), timestamp=1)
    assert (await desk.deliver(stale)).status == 403
    click = action_request(
        SECRET, action_id="claim", value=REF, user_id=STAFF, channel_id=channel_id, message_ts=ts
    )
    assert (
        await desk.fake.post_to_app(desk.url, click[0], dict(click[1], **{SIGNATURE_HEADER: "v0=00"}))
    ).status == 403
    assert desk.host.actions == [] and desk.fake.of("auth.test") == []


async def test_an_oversized_body_is_413(desk: Desk) -> None:
    body = b"x" * (desk.channel.max_body_bytes + 10)
    answer = await desk.client.post("/webhooks/slack", data=body)
    assert answer.status == 413


async def test_claim_button_claims(desk: Desk) -> None:
    channel_id, ts = await post_card(desk)
    answer = await desk.deliver(
        action_request(
            SECRET,
            action_id="claim",
            value=REF,
            user_id=STAFF,
            channel_id=channel_id,
            message_ts=ts,
            block_id=f"card:{REF}",
            message=desk.fake.message_json(channel_id, ts),
        )
    )
    assert answer.status == 200
    (action,) = desk.host.actions
    assert (action.kind, action.reference, action.staff_name, action.place) == (
        "claim",
        REF,
        "Kim Minji",
        channel_id,
    )
    assert desk.fake.ephemerals == []


async def test_a_refused_action_is_explained_to_that_staff_member_only(desk: Desk) -> None:
    channel_id, ts = await post_card(desk)
    desk.host.result = StaffResult(ok=False, message="Only transport staff may act on this ticket")
    await desk.deliver(
        action_request(
            SECRET, action_id="claim", value=REF, user_id=OTHER, channel_id=channel_id, message_ts=ts
        )
    )
    await desk.deliver(event_request(SECRET, thread_reply_event(channel_id, ts, OTHER, "hello")))
    assert [(e.user, e.text, e.channel) for e in desk.fake.ephemerals] == [
        (OTHER, "Only transport staff may act on this ticket", channel_id)
    ] * 2
    assert desk.fake.ephemerals[1].thread_ts == ts
    assert len(desk.fake.messages(channel_id)) == 1  # nothing for everyone to see


async def test_reassign_opens_a_form_and_its_submission_reassigns(desk: Desk) -> None:
    channel_id, ts = await post_card(desk)
    answer = await desk.deliver(
        action_request(
            SECRET, action_id="reassign", value=REF, user_id=STAFF, channel_id=channel_id, message_ts=ts
        )
    )
    assert answer.status == 200 and desk.host.actions == []
    (opened,) = desk.fake.views
    picker = opened.view["blocks"][0]["element"]
    assert [o["value"] for o in picker["options"]] == ["transport", "environment"]
    submit = view_submission_request(
        SECRET,
        callback_id=opened.view["callback_id"],
        view=opened.view,
        user_id=STAFF,
        values={
            "department": {"value": {"type": "static_select", "selected_option": {"value": "environment"}}},
            "reason": {"value": "It is illegal dumping, not a road problem"},
        },
    )
    assert (await desk.deliver(submit)).status == 200
    (action,) = desk.host.actions
    assert (action.kind, action.reference, action.department, action.reason, action.place) == (
        "reassign",
        REF,
        "environment",
        "It is illegal dumping, not a road problem",
        channel_id,
    )


async def test_resolve_form_carries_the_text_for_the_citizen(desk: Desk) -> None:
    channel_id, ts = await post_card(desk)
    await desk.deliver(
        action_request(
            SECRET, action_id="resolve", value=REF, user_id=STAFF, channel_id=channel_id, message_ts=ts
        )
    )
    (opened,) = desk.fake.views
    submit = view_submission_request(
        SECRET,
        callback_id=opened.view["callback_id"],
        view=opened.view,
        user_id=STAFF,
        values={"text": {"value": "Repaired today"}},
    )
    await desk.deliver(submit)
    (action,) = desk.host.actions
    assert (action.kind, action.reference, action.text) == ("resolve", REF, "Repaired today")


async def test_review_send_and_edit(desk: Desk) -> None:
    review_id = desk.fake.add_channel("desk-review")
    item = {
        "kind": "review",
        "reference": REF,
        "question": "sofa?",
        "language": "en",
        "due": None,
        "suggestions": [{"entry": "bulky-waste", "score": 0.7, "answer": "Register bulky waste first."}],
    }
    ts = (await desk.channel.send(outbound("#desk-review", item))).provider_message_id
    assert ts is not None
    message = desk.fake.message_json(review_id, ts)
    (send, edit) = buttons(desk.fake.messages(review_id)[0].blocks)
    await desk.deliver(
        action_request(
            SECRET,
            action_id="review_send",
            value=send[1],
            block_id=send[2],
            user_id=STAFF,
            channel_id=review_id,
            message_ts=ts,
            message=message,
        )
    )
    await desk.deliver(
        action_request(
            SECRET,
            action_id="review_edit",
            value=edit[1],
            block_id=edit[2],
            user_id=STAFF,
            channel_id=review_id,
            message_ts=ts,
            message=message,
        )
    )
    (opened,) = desk.fake.views
    assert opened.view["blocks"][0]["element"]["initial_value"] == "Register bulky waste first."
    await desk.deliver(
        view_submission_request(
            SECRET,
            callback_id=opened.view["callback_id"],
            view=opened.view,
            user_id=STAFF,
            values={"text": {"value": "Register it online, then put it out."}},
        )
    )
    sent, edited = desk.host.actions
    assert (sent.kind, sent.reference, sent.entry) == ("review_send", REF, "bulky-waste")
    assert (edited.kind, edited.reference, edited.text) == (
        "review_edit",
        REF,
        "Register it online, then put it out.",
    )


async def test_slash_command_looks_up_and_answers_privately(desk: Desk) -> None:
    channel_id = desk.fake.add_channel("dept-transport")
    desk.host.result = StaffResult(
        ok=True, message=f"{REF}: Forwarded", lines=("Due Mon 18:00", "Assignee: nobody")
    )
    answer = await desk.deliver(
        command_request(SECRET, command="/ticket", text=f" {REF} ", user_id=STAFF, channel_id=channel_id)
    )
    assert answer.status == 200
    assert answer.text == f"{REF}: Forwarded\nDue Mon 18:00\nAssignee: nobody"
    (action,) = desk.host.actions
    assert (action.kind, action.reference, action.staff_name, action.place) == (
        "lookup",
        REF,
        "Kim Minji",
        channel_id,
    )
    assert desk.fake.messages(channel_id) == []


def test_config_needs_secrets_when_enabled() -> None:
    with pytest.raises(ValueError, match="bot_token and signing_secret"):
        SlackConfig(enabled=True, bot_token=TOKEN)
    with pytest.raises(ValueError):
        SlackConfig(surprise=1)
    config = SlackConfig()
    assert (config.rate_limit.per_second, config.rate_limit.per_recipient_per_second) == (20.0, 1.0)


async def test_start_does_not_need_slack(fake: FakeSlack) -> None:
    fake.down = True
    channel = SlackChannel(
        SlackConfig(enabled=True, bot_token=TOKEN, signing_secret=SECRET, api_base_url=fake.api_url),
        public_url="https://city.example/",
    )
    await channel.start(RecordingHost())
    await channel.stop()
    assert fake.requests == []


async def test_a_hanging_slack_is_a_transient_timeout(fake: FakeSlack) -> None:
    alerts = fake.add_channel("desk-alerts")
    config = SlackConfig(
        enabled=True,
        bot_token=TOKEN,
        signing_secret=SECRET,
        api_base_url=fake.api_url,
        request_timeout_seconds=1,
    )
    channel = SlackChannel(config, public_url="https://city.example")
    await channel.start(RecordingHost())
    fake.hang = True
    with pytest.raises(TransientSendError, match="unreachable"):
        await channel.send(outbound(alerts, {"kind": "alert", "text": "x"}))
    fake.hang = False
    await channel.stop()


async def test_the_events_url_is_verified(desk: Desk) -> None:
    answer = await desk.deliver(url_verification_request(SECRET, "challenge-3eZbrw1a"))
    assert (answer.status, answer.json()) == (200, {"challenge": "challenge-3eZbrw1a"})
