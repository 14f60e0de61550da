"""The Slack stand-in against the real slack_sdk AsyncWebClient and a real slack-bolt AsyncApp served through
bolt's aiohttp adapter: if these pass, an adapter proven against the stand-in meets the same wire, answers
and errors as production. And its Block Kit checks, on their own."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.blockkit import block_problems, view_problems
from tests.fakes.slack import (
    RETRY_NUM_HEADER,
    RETRY_REASON_HEADER,
    SIGNATURE_HEADER,
    FakeSlack,
    action_request,
    app_message_event,
    bot_message_event,
    command_request,
    event_request,
    new_trigger_id,
    thread_reply_event,
    url_verification_request,
    view_submission_request,
)
from tests.waiting import until

TOKEN = "xoxb-1111-2222-fake"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
STAFF = "U123"


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeSlack]:
    async with FakeSlack(bot_token=TOKEN, clock=clock) as server:
        server.add_user(STAFF, "Kim Minji", display_name="minji")
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=fake.api_url)


async def slack_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


def card(text: str) -> list[dict[str, Any]]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "block_id": "ticket-7",
            "elements": [
                {
                    "type": "button",
                    "action_id": "resolve",
                    "value": "7",
                    "text": {"type": "plain_text", "text": "Done"},
                }
            ],
        },
    ]


MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "ticket_modal",
    "title": {"type": "plain_text", "text": "New ticket"},
    "submit": {"type": "plain_text", "text": "Create"},
    "private_metadata": '{"reference": "7"}',
    "blocks": [
        {
            "type": "input",
            "block_id": "summary",
            "label": {"type": "plain_text", "text": "Summary"},
            "element": {"type": "plain_text_input", "action_id": "text"},
        }
    ],
}


# --- Web API --------------------------------------------------------------------------------------------


async def test_auth_test_and_the_token(fake: FakeSlack, client: AsyncWebClient) -> None:
    answer = await client.auth_test()
    assert (answer["team_id"], answer["user_id"], answer["bot_id"]) == ("T0CITY", "U0BOT", "B0BOT")
    (call,) = fake.of("auth.test")
    assert (call.path, call.headers["Authorization"], call.status) == (
        "/api/auth.test",
        f"Bearer {TOKEN}",
        200,
    )

    wrong = await slack_error(AsyncWebClient(token="xoxb-wrong", base_url=fake.api_url).auth_test())
    assert (wrong.response.status_code, wrong.response["error"]) == (200, "invalid_auth")
    missing = await slack_error(AsyncWebClient(base_url=fake.api_url).auth_test())
    assert missing.response["error"] == "not_authed"
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{fake.api_url}no.such", headers={"Authorization": f"Bearer {TOKEN}"}) as response,
    ):
        assert (response.status, await response.json()) == (404, {"ok": False, "error": "unknown_method"})


async def test_a_card_a_threaded_reply_and_an_update(fake: FakeSlack, client: AsyncWebClient) -> None:
    channel = fake.add_channel("dept-transport")
    posted = await client.chat_postMessage(
        channel="#dept-transport", text="Ticket 7", blocks=card("*Ticket 7*")
    )
    assert posted["channel"] == channel  # a name is accepted, the answer carries the id
    assert posted["message"]["bot_id"] == "B0BOT" and posted["message"]["blocks"][0]["type"] == "section"
    parent = posted["ts"]

    reply = await client.chat_postMessage(channel=channel, text="Sent to the citizen", thread_ts=parent)
    # A reply's ts threads under its parent, as Slack does.
    again = await client.chat_postMessage(channel=channel, text="Resolved", thread_ts=reply["ts"])
    assert reply["message"]["thread_ts"] == again["message"]["thread_ts"] == parent
    assert float(parent) < float(reply["ts"]) < float(again["ts"])

    assert [m.text for m in fake.messages(channel)] == ["Ticket 7", "Sent to the citizen", "Resolved"]
    assert [m.ts for m in fake.thread(channel, parent)] == [reply["ts"], again["ts"]]
    assert [m.text for m in fake.messages(channel, top_level=True)] == ["Ticket 7"]

    updated = await client.chat_update(
        channel=channel, ts=parent, text="Ticket 7 (closed)", blocks=card("closed")
    )
    assert updated["message"]["text"] == "Ticket 7 (closed)"
    stored = fake.message(channel, parent)
    assert stored is not None
    assert (stored.updated, stored.text, stored.blocks) == (1, "Ticket 7 (closed)", card("closed"))
    assert (await slack_error(client.chat_update(channel=channel, ts="1.000001", text="x"))).response[
        "error"
    ] == "message_not_found"
    bad = await slack_error(client.chat_update(channel=channel, ts=parent, text="x", blocks=[{"type": "?"}]))
    assert bad.response["error"] == "invalid_blocks" and stored.updated == 1


async def test_history_and_replies_read_from_oldest_with_metadata_and_pages(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    channel = fake.add_channel("dept-transport")
    tag = {"event_type": "intake_outbox", "event_payload": {"key": "row-1"}}
    first = (await client.chat_postMessage(channel=channel, text="first", metadata=tag))["ts"]
    second = (await client.chat_postMessage(channel=channel, text="second"))["ts"]
    reply = (await client.chat_postMessage(channel=channel, text="in thread", thread_ts=first, metadata=tag))[
        "ts"
    ]
    third = (await client.chat_postMessage(channel=channel, text="third"))["ts"]

    history = await client.conversations_history(channel=channel, oldest=first, include_all_metadata=True)
    assert [m["text"] for m in history["messages"]] == ["third", "second"]  # newest first; replies not
    everything = await client.conversations_history(channel=channel)
    assert [m["ts"] for m in everything["messages"]] == [third, second, first]
    assert everything["messages"][2]["metadata"] == {"event_type": "intake_outbox"}  # payload: only if asked
    pages = [
        [m["ts"] for m in page["messages"]]
        async for page in await client.conversations_history(
            channel=channel, limit=2, include_all_metadata=True
        )
    ]
    assert pages == [[third, second], [first]]

    thread = await client.conversations_replies(
        channel=channel, ts=first, oldest=second, include_all_metadata=True
    )
    assert [m["ts"] for m in thread["messages"]] == [first, reply]  # the parent first, whatever `oldest` says
    assert thread["messages"][1]["metadata"] == tag and thread["has_more"] is False
    alone = await client.conversations_replies(channel=channel, ts=second)
    assert [m["ts"] for m in alone["messages"]] == [second]

    missing = await slack_error(client.conversations_replies(channel=channel, ts="1.000001"))
    assert missing.response["error"] == "thread_not_found"
    fake.not_member.add(channel)
    outside = await slack_error(client.conversations_history(channel=channel))
    assert outside.response["error"] == "not_in_channel"


async def test_post_message_refusals_as_slack_words_them(fake: FakeSlack, client: AsyncWebClient) -> None:
    channel = fake.add_channel("dept-parks")
    outside = fake.add_channel("dept-water")
    fake.not_member.add(outside)

    async def error(**kwargs: Any) -> str:
        return str((await slack_error(client.chat_postMessage(**kwargs))).response["error"])

    assert await error(channel="C0NOSUCH00", text="hi") == "channel_not_found"
    assert await error(channel=outside, text="hi") == "not_in_channel"
    with pytest.warns(UserWarning, match="top-level `text`"):  # slack_sdk warns before sending
        assert await error(channel=channel) == "no_text"
    assert await error(channel=channel, text="x" * 40_001) == "msg_too_long"
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    invalid = await slack_error(client.chat_postMessage(channel=channel, text="t", blocks=too_long))
    assert invalid.response["error"] == "invalid_blocks"
    assert "/blocks/0/text/text" in invalid.response["errors"][0]
    assert invalid.response["response_metadata"]["messages"][0].startswith("[ERROR] must be less than 3001")
    assert fake.messages(channel) == []

    # A thread_ts that matches no message: Slack says ok and posts it un-threaded to the channel.
    stray = await client.chat_postMessage(channel=channel, text="lost", thread_ts="1700000000.000100")
    assert "thread_ts" not in stray["message"]
    (message,) = fake.messages(channel, top_level=True)
    assert message.thread_ts is None


async def test_reactions_on_a_staff_reply(fake: FakeSlack, client: AsyncWebClient) -> None:
    channel = fake.add_channel("dept-transport")
    parent = (await client.chat_postMessage(channel=channel, text="Ticket 8"))["ts"]
    staff = fake.add_message(channel, "On our way", user=STAFF, thread_ts=parent)

    await client.reactions_add(channel=channel, timestamp=staff.ts, name="white_check_mark")
    assert fake.reactions == {(channel, staff.ts): ["white_check_mark"]}
    again = await slack_error(
        client.reactions_add(channel=channel, timestamp=staff.ts, name="white_check_mark")
    )
    assert again.response["error"] == "already_reacted"
    colons = await slack_error(client.reactions_add(channel=channel, timestamp=staff.ts, name=":eyes:"))
    assert colons.response["error"] == "invalid_name"
    missing = await slack_error(client.reactions_add(channel=channel, timestamp="1.000002", name="eyes"))
    assert missing.response["error"] == "message_not_found"


async def test_users_and_channels_can_be_looked_up(fake: FakeSlack, client: AsyncWebClient) -> None:
    ids = [fake.add_channel(name) for name in ("dept-transport", "dept-parks", "dept-water")]
    fake.not_member.add(ids[2])

    user = (await client.users_info(user=STAFF))["user"]
    assert (user["real_name"], user["profile"]["display_name"], user["is_bot"]) == (
        "Kim Minji",
        "minji",
        False,
    )
    assert (await slack_error(client.users_info(user="U0NOBODY"))).response["error"] == "user_not_found"

    # slack_sdk pages by cursor, handing back the same response object with each page's data.
    pages = [
        page["channels"]
        async for page in await client.conversations_list(
            types="public_channel,private_channel", exclude_archived=True, limit=2
        )
    ]
    assert [len(page) for page in pages] == [2, 1]
    listed = {c["name"]: (c["id"], c["is_member"]) for page in pages for c in page}
    assert listed == {
        "dept-transport": (ids[0], True),
        "dept-parks": (ids[1], True),
        "dept-water": (ids[2], False),  # listed (it is public), but the bot is not in it
    }
    assert fake.channel_id("#dept-parks") == ids[1]


async def test_ephemeral_messages_and_modals(fake: FakeSlack, client: AsyncWebClient) -> None:
    channel = fake.add_channel("dept-transport")
    answer = await client.chat_postEphemeral(channel=channel, user=STAFF, text="Only you can see this")
    (ephemeral,) = fake.ephemerals
    assert (ephemeral.ts, ephemeral.user, ephemeral.channel) == (answer["message_ts"], STAFF, channel)
    assert fake.messages(channel) == []

    trigger = new_trigger_id()
    opened = await client.views_open(trigger_id=trigger, view=MODAL)
    (view,) = fake.views
    assert (view.trigger_id, view.view, opened["view"]["id"]) == (trigger, MODAL, view.view_id)
    assert opened["view"]["private_metadata"] == MODAL["private_metadata"]

    async def error(trigger_id: str, view: dict[str, Any]) -> SlackApiError:
        return await slack_error(client.views_open(trigger_id=trigger_id, view=view))

    assert (await error(trigger, MODAL)).response["error"] == "exchanged_trigger_id"
    assert (await error(new_trigger_id(issued_at=time.time() - 4), MODAL)).response[
        "error"
    ] == "expired_trigger_id"
    assert (await error("not-a-trigger", MODAL)).response["error"] == "invalid_trigger_id"
    unsubmittable = await error(new_trigger_id(), {k: v for k, v in MODAL.items() if k != "submit"})
    assert unsubmittable.response["error"] == "invalid_arguments"
    assert "[json-pointer:/view/submit]" in unsubmittable.response["response_metadata"]["messages"][0]
    assert len(fake.views) == 1


# --- rate limits and outages --------------------------------------------------------------------------------


async def test_a_second_post_to_one_channel_within_a_second_is_429(
    fake: FakeSlack, client: AsyncWebClient, clock: ManualClock
) -> None:
    first, second = fake.add_channel("dept-a"), fake.add_channel("dept-b")
    fake.limit("chat.postMessage", per_channel_per_second=1)
    await client.chat_postMessage(channel=first, text="1")
    limited = await slack_error(client.chat_postMessage(channel="#dept-a", text="2"))
    # What an adapter reads to back off: status 429, Retry-After in seconds, error "ratelimited".
    assert limited.response.status_code == 429
    assert limited.response.headers["Retry-After"] == "1"
    assert limited.response["error"] == "ratelimited"
    await client.chat_postMessage(channel=second, text="other channel")
    clock.now += 1.0
    await client.chat_postMessage(channel=first, text="3")
    assert [m.text for m in fake.messages(first)] == ["1", "3"]
    assert [r.status for r in fake.of("chat.postMessage")] == [200, 429, 200, 200]


async def test_a_workspace_wide_limit_per_minute_and_lifting_it(
    fake: FakeSlack, client: AsyncWebClient, clock: ManualClock
) -> None:
    fake.limit("users.info", per_minute=2)
    await client.users_info(user=STAFF)
    clock.now += 20
    await client.users_info(user=STAFF)
    limited = await slack_error(client.users_info(user=STAFF))
    assert limited.response.headers["Retry-After"] == "40"
    fake.limit("users.info")
    assert (await client.users_info(user=STAFF))["ok"]


async def test_injected_failures_down_and_hang(fake: FakeSlack, client: AsyncWebClient) -> None:
    channel = fake.add_channel("dept-a")
    fake.fail_next(1, status=500, endpoint="chat.postMessage")
    await client.auth_test()  # another method is not affected
    failed = await slack_error(client.chat_postMessage(channel=channel, text="x"))
    # Slack's edge answers with an HTML page: no error code for slack_sdk to read, only the status.
    assert (failed.response.status_code, failed.response.data) == (500, {})
    await client.chat_postMessage(channel=channel, text="x")

    fake.fail_next(status=200, error="internal_error")
    internal = await slack_error(client.auth_test())
    assert (internal.response.status_code, internal.response["error"]) == (200, "internal_error")
    assert "Retry-After" not in internal.response.headers
    fake.fail_next(status=429)
    limited = await slack_error(client.auth_test())
    assert (limited.response["error"], limited.response.headers["Retry-After"]) == ("ratelimited", "1")

    fake.down = True
    assert (await slack_error(client.auth_test())).response.status_code == 503
    fake.down = False

    fake.hang = True
    before = len(fake.requests)
    pending = asyncio.create_task(client.auth_test())
    await until(lambda: len(fake.requests) > before)
    assert not pending.done()
    fake.hang = False
    assert (await pending)["ok"]


# --- Block Kit, as Slack checks it ------------------------------------------------------------------------


def test_blocks_our_desk_sends_pass() -> None:
    header = {"type": "header", "text": {"type": "plain_text", "text": "2026-000123 · Forwarded"}}
    fields = {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Due*\nMon"}] * 7}
    image = {"type": "image", "image_url": "https://city.example/m/1?sig=x", "alt_text": "photo 1"}
    context = {"type": "context", "elements": [{"type": "mrkdwn", "text": "Reply in this thread"}]}
    assert block_problems([header, fields, image, context, *card("*Ticket 7*")]) == []
    assert view_problems(MODAL) == []


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ("not a list", "/blocks"),
        ([{"type": "divider"}] * 51, "/blocks"),
        ([{"type": "carousel"}], "/blocks/0/type"),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "*bold*"}}], "/blocks/0/text/type"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}], "/blocks/0/text/text"),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": ""}}], "/blocks/0/text/text"),
        ([{"type": "section"}], "/blocks/0"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}], "/blocks/0/fields"),
        ([{"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}], "/blocks/1/block_id"),
        ([{"type": "actions", "elements": []}], "/blocks/0/elements"),
        (
            [{"type": "context", "elements": [{"type": "mrkdwn", "text": "x" * 3001}]}],
            "/blocks/0/elements/0/text",
        ),
        ([{"type": "image", "image_url": "ftp://x", "alt_text": "a"}], "/blocks/0/image_url"),
        ([{"type": "image", "image_url": "https://x", "alt_text": ""}], "/blocks/0/alt_text"),
    ],
)
def test_block_problems_point_at_what_slack_refuses(blocks: Any, pointer: str) -> None:
    problems = block_problems(blocks)
    assert any(problem.endswith(f"[json-pointer:{pointer}]") for problem in problems), problems


def test_buttons_and_inputs_are_checked() -> None:
    blocks = card("x")
    button = blocks[1]["elements"][0]
    cases = {
        "/blocks/1/elements/0/text/text": {**button, "text": {"type": "plain_text", "text": "x" * 76}},
        "/blocks/1/elements/0/text/type": {**button, "text": {"type": "mrkdwn", "text": "Done"}},
        "/blocks/1/elements/0/value": {**button, "value": "x" * 2001},
        "/blocks/1/elements/0/action_id": {**button, "action_id": "x" * 256},
        "/blocks/1/elements/0/style": {**button, "style": "green"},
        "/blocks/1/elements/0": {"type": "marquee"},
    }
    for pointer, element in cases.items():
        problems = block_problems([blocks[0], {**blocks[1], "elements": [element]}])
        assert any(p.endswith(f"[json-pointer:{pointer}]") for p in problems), (pointer, problems)

    select = {"type": "static_select", "action_id": "value", "options": []}
    picker = {"type": "input", "label": {"type": "plain_text", "text": "Department"}, "element": select}
    assert block_problems([picker]) == ["must have 1 to 100 items [json-pointer:/blocks/0/element/options]"]
    option = {"text": {"type": "plain_text", "text": "Transport"}, "value": "t" * 151}
    assert block_problems([{**picker, "element": {**select, "options": [option]}}]) == [
        "must be less than 151 characters [json-pointer:/blocks/0/element/options/0/value]"
    ]
    long_input = {"type": "plain_text_input", "action_id": "value", "initial_value": "x" * 3001}
    assert block_problems([{**picker, "element": long_input}]) == [
        "must be less than 3001 characters [json-pointer:/blocks/0/element/initial_value]"
    ]


def test_view_problems() -> None:
    assert view_problems({**MODAL, "type": "home"}) == ["must be one of [modal] [json-pointer:/view/type]"]
    long_title = {**MODAL, "title": {"type": "plain_text", "text": "Reassign 2026-000123 now"}}
    assert view_problems(long_title) == []  # 24 characters: the most Slack takes
    too_long = {**MODAL, "title": {"type": "plain_text", "text": "Reassign 2026-000123 now!"}}
    assert view_problems(too_long) == ["must be less than 25 characters [json-pointer:/view/title/text]"]
    assert view_problems({**MODAL, "private_metadata": "x" * 3001}) == [
        "must be less than 3001 characters [json-pointer:/view/private_metadata]"
    ]
    label = {**MODAL["blocks"][0], "label": {"type": "plain_text", "text": ""}}
    assert view_problems({**MODAL, "blocks": [label]}) == [
        "must be more than 0 characters [json-pointer:/view/blocks/0/label/text]"
    ]


# --- what Slack sends to a bolt app ---------------------------------------------------------------


class BoltServer:
    """A tiny bolt AsyncApp behind aiohttp, as the bot embeds it, recording what its listeners saw."""

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake
        self.seen: list[tuple[str, Any]] = []
        client = AsyncWebClient(token=TOKEN, base_url=fake.api_url)
        # process_before_response: the listener has run when the HTTP answer comes back (no waiting).
        self.app = AsyncApp(client=client, signing_secret=SECRET, process_before_response=True)
        self.url = ""
        self._runner: web.AppRunner | None = None

        @self.app.event("message")
        async def on_message(event: dict[str, Any], say: Any) -> None:
            self.seen.append(("message", event))
            if event.get("thread_ts") and event.get("user") == STAFF:
                await say(text="Relayed to the citizen", thread_ts=event["thread_ts"])

        @self.app.action("resolve")
        async def on_resolve(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
            await ack()
            self.seen.append(("action", body))
            await client.views_open(trigger_id=body["trigger_id"], view=MODAL)

        @self.app.command("/ticket")
        async def on_ticket(ack: Any, command: dict[str, Any]) -> None:
            await ack(text=f"Ticket for {command['text']}")
            self.seen.append(("command", command))

        @self.app.view("ticket_modal")
        async def on_submit(ack: Any, view: dict[str, Any]) -> None:
            await ack()
            self.seen.append(("view", view))

    async def __aenter__(self) -> BoltServer:
        async def handle(request: web.Request) -> web.Response:
            return await to_aiohttp_response(await self.app.async_dispatch(await to_bolt_request(request)))

        web_app = web.Application()
        web_app.router.add_post("/webhooks/slack", handle)
        self._runner = web.AppRunner(web_app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/webhooks/slack"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def bolt(fake: FakeSlack) -> AsyncIterator[BoltServer]:
    async with BoltServer(fake) as server:
        yield server


async def test_signed_events_reach_bolt_and_forged_ones_are_refused(
    fake: FakeSlack, bolt: BoltServer
) -> None:
    channel = fake.add_channel("dept-transport")
    parent = fake.add_message(channel, "Ticket 9", user="U0BOT")
    staff = fake.add_message(channel, "Fixed it", user=STAFF, thread_ts=parent.ts)

    body, headers = event_request(
        SECRET, thread_reply_event(channel, parent.ts, STAFF, "Fixed it", ts=staff.ts), event_id="Ev0001"
    )
    reply = await fake.post_to_app(bolt.url, body, headers)
    assert reply.status == 200
    ((kind, event),) = bolt.seen
    assert (kind, event["thread_ts"], event["user"], event["channel_type"]) == (
        "message",
        parent.ts,
        STAFF,
        "channel",
    )
    assert [m.text for m in fake.thread(channel, parent.ts)] == ["Fixed it", "Relayed to the citizen"]

    forged = dict(headers, **{SIGNATURE_HEADER: "v0=" + "0" * 64})
    assert (await fake.post_to_app(bolt.url, body, forged)).status == 401
    stale_body, stale = event_request(
        SECRET, thread_reply_event(channel, parent.ts, STAFF, "old"), timestamp=1
    )
    assert (await fake.post_to_app(bolt.url, stale_body, stale)).status == 401
    wrong_body, wrong = event_request("another-secret", thread_reply_event(channel, parent.ts, STAFF, "x"))
    assert (await fake.post_to_app(bolt.url, wrong_body, wrong)).status == 401
    assert len(bolt.seen) == 1

    # A retry: same event_id, retry headers, still signed.
    retry_body, retry = event_request(
        SECRET, bolt.seen[0][1], event_id="Ev0001", retry_num=1, retry_reason="http_timeout"
    )
    assert (retry[RETRY_NUM_HEADER], retry[RETRY_REASON_HEADER]) == ("1", "http_timeout")
    assert json.loads(retry_body)["event_id"] == "Ev0001"
    assert (await fake.post_to_app(bolt.url, retry_body, retry)).status == 200
    assert len(bolt.seen) == 2  # bolt does not dedupe: the app must, by event_id

    # Other bots reach the listener; the app's own messages are dropped by bolt.
    own_body, own = event_request(SECRET, app_message_event(channel, "Ticket 9", thread_ts=parent.ts))
    other_body, other = event_request(SECRET, bot_message_event(channel, "CI passed", bot_id="B0OTHER"))
    assert (await fake.post_to_app(bolt.url, own_body, own)).status == 200
    assert (await fake.post_to_app(bolt.url, other_body, other)).status == 200
    assert bolt.seen[-1][1]["subtype"] == "bot_message" and len(bolt.seen) == 3

    assert len(fake.of("auth.test")) == 1  # bolt asked once, then cached


async def test_url_verification_is_echoed(fake: FakeSlack, bolt: BoltServer) -> None:
    body, headers = url_verification_request(SECRET, "challenge-3eZbrw1a")
    reply = await fake.post_to_app(bolt.url, body, headers)
    assert (reply.status, reply.json()) == (200, {"challenge": "challenge-3eZbrw1a"})


async def test_a_button_click_reaches_app_action_and_opens_a_modal(fake: FakeSlack, bolt: BoltServer) -> None:
    channel = fake.add_channel("dept-transport")
    posted = await AsyncWebClient(token=TOKEN, base_url=fake.api_url).chat_postMessage(
        channel=channel, text="Ticket 7", blocks=card("Ticket 7")
    )
    body, headers = action_request(
        SECRET,
        action_id="resolve",
        value="7",
        user_id=STAFF,
        channel_id=channel,
        message_ts=posted["ts"],
        block_id="ticket-7",
        message=fake.message_json(channel, posted["ts"]),
    )
    assert body.startswith(b"payload=")
    reply = await fake.post_to_app(bolt.url, body, headers)
    assert reply.status == 200
    ((kind, payload),) = bolt.seen
    assert (kind, payload["actions"][0]["value"], payload["user"]["id"]) == ("action", "7", STAFF)
    assert (payload["channel"]["id"], payload["container"]["message_ts"]) == (channel, posted["ts"])
    assert payload["message"]["blocks"] == card("Ticket 7")
    (opened,) = fake.views  # the trigger from the payload opened a modal
    assert opened.trigger_id == payload["trigger_id"]

    forged = dict(headers, **{SIGNATURE_HEADER: "v0=" + "1" * 64})
    assert (await fake.post_to_app(bolt.url, body, forged)).status == 401


async def test_a_slash_command_and_a_modal_submission(fake: FakeSlack, bolt: BoltServer) -> None:
    channel = fake.add_channel("dept-transport")
    body, headers = command_request(SECRET, command="/ticket", text="7", user_id=STAFF, channel_id=channel)
    reply = await fake.post_to_app(bolt.url, body, headers)
    assert (reply.status, reply.text) == (200, "Ticket for 7")  # bolt acks a text-only answer as plain text
    assert bolt.seen[0][1]["command"] == "/ticket" and bolt.seen[0][1]["channel_id"] == channel

    body, headers = view_submission_request(
        SECRET,
        callback_id="ticket_modal",
        view=MODAL,
        values={"summary": {"text": "Pothole on 5th"}},
        user_id=STAFF,
    )
    reply = await fake.post_to_app(bolt.url, body, headers)
    assert reply.status == 200
    kind, view = bolt.seen[1]
    assert kind == "view" and view["state"]["values"] == {
        "summary": {"text": {"type": "plain_text_input", "value": "Pothole on 5th"}}
    }
    assert (view["private_metadata"], view["blocks"]) == (MODAL["private_metadata"], MODAL["blocks"])


async def test_post_to_app_reports_a_missed_ack_deadline(fake: FakeSlack) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    web_app = web.Application()
    web_app.router.add_post("/", slow)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        body, headers = event_request(SECRET, thread_reply_event("C1", "1.000001", STAFF, "x"))
        reply = await fake.post_to_app(
            f"http://127.0.0.1:{runner.addresses[0][1]}/", body, headers, timeout=0.05
        )
        assert reply.status is None
    finally:
        release.set()
        await runner.cleanup()
