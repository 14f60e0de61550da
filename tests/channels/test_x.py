"""The X adapter against the fake X API (real tweepy underneath) and a recording host."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from channels.base import (
    Button,
    DeliveryReport,
    InboundMessage,
    OutboundMessage,
    PermanentSendError,
    Receipt,
    TransientSendError,
)
from channels.x import XChannel, fit_tweet, without_leading_handles
from channels.x_config import XConfig
from tests.fakes.x import FakeX, aaa_dm, aaa_tweet_create, crc_response, sign_body, tweet_weighted_length
from tests.waiting import until

SECRET = "x-consumer-secret"


class RecordingHost:
    """The router's side of the contract, in memory: intake dedupes on the provider's id."""

    leading = True  # False: another instance runs the pollers

    def __init__(self) -> None:
        self.calls: list[InboundMessage] = []  # every intake call, repeats included
        self.messages: list[InboundMessage] = []  # what was stored
        self.cursors: dict[tuple[str, str], str] = {}
        self.cursor_at_intake: list[str | None] = []
        self.fail_intake_of: set[str] = set()  # provider ids whose next intake fails once

    async def intake(self, message: InboundMessage) -> Receipt:
        self.calls.append(message)
        self.cursor_at_intake.append(
            self.cursors.get(("x", "dms" if message.provider_message_id.startswith("dm") else "mentions"))
        )
        if message.provider_message_id in self.fail_intake_of:
            self.fail_intake_of.discard(message.provider_message_id)
            raise RuntimeError("the store is unavailable")
        duplicate = any(m.provider_message_id == message.provider_message_id for m in self.messages)
        if not duplicate:
            self.messages.append(message)
        return Receipt(duplicate=duplicate)

    async def delivery_report(self, report: DeliveryReport) -> bool:
        return False

    async def recall(self, channel: str, name: str) -> str | None:
        return self.cursors.get((channel, name))

    async def remember(self, channel: str, name: str, value: str) -> None:
        self.cursors[(channel, name)] = value

    async def lead(self, job: str) -> bool:
        return self.leading


def config_for(fake: FakeX, **overrides: Any) -> XConfig:
    settings: dict[str, Any] = {
        "enabled": True,
        **fake.client_kwargs,
        "api_base_url": fake.base_url,
        "mentions_poll_seconds": 0.05,
        "dm_poll_seconds": 0.05,
        "page_size": 5,
        "request_timeout_seconds": 2.0,
        "error_backoff_seconds": 0.02,
        "max_backoff_seconds": 0.2,
        "rate_limit_margin_seconds": 0.0,
        **overrides,
    }
    return XConfig(**settings)


@pytest.fixture
async def fake() -> AsyncIterator[FakeX]:
    async with FakeX(consumer_secret=SECRET, me_id="100", me_username="city") as f:
        yield f


@pytest.fixture
def host() -> RecordingHost:
    return RecordingHost()


@pytest.fixture
async def make_channel(fake: FakeX) -> AsyncIterator[Callable[..., XChannel]]:
    made: list[XChannel] = []

    def make(**overrides: Any) -> XChannel:
        channel = XChannel(config_for(fake, **overrides), public_url="https://city.example")
        made.append(channel)
        return channel

    yield make
    for channel in made:
        await channel.stop()


def ids(messages: list[InboundMessage]) -> list[str]:
    return [m.provider_message_id for m in messages]


# -- text helpers -------------------------------------------------------------------------------------


def test_leading_handles_are_stripped_and_only_those() -> None:
    assert without_leading_handles("@city @kim 가로등이 꺼졌어요") == "가로등이 꺼졌어요"
    assert without_leading_handles("@City님 안녕하세요") == "님 안녕하세요"
    assert without_leading_handles("hello @city, the bus stop") == "hello @city, the bus stop"
    assert without_leading_handles("@city") == ""


def test_fit_tweet_agrees_with_x_counting() -> None:
    for text in ("가" * 200, "a" * 400, "접수 " * 100 + "https://city.example/s/1 " * 5, "짧은 답"):
        fitted = fit_tweet(text)
        assert tweet_weighted_length(fitted) <= 280
        if tweet_weighted_length(text) <= 280:
            assert fitted == text
        else:
            assert fitted.endswith("…") and tweet_weighted_length(fitted) >= 270


# -- polling ------------------------------------------------------------------------------------------


async def test_mentions_become_public_messages(
    fake: FakeX, host: RecordingHost, make_channel: Callable[..., XChannel]
) -> None:
    first = fake.add_mention("200", "kim", "@city 가로등이 고장났어요", lang="ko")
    second = fake.add_mention("201", "lee", "@city @kim There is a pothole on Main Street", lang="en")
    own = fake.add_mention("100", "city", "@city a note the city wrote itself")
    channel = make_channel(poll_direct_messages=False)
    await channel.start(host)
    await until(lambda: host.cursors.get(("x", "mentions")) == own)

    assert ids(host.calls) == [f"tweet-{first}", f"tweet-{second}"]  # oldest first, own Tweet skipped
    kim, lee = host.messages
    assert (kim.channel, kim.sender, kim.sender_name, kim.text) == ("x", "200", "@kim", "가로등이 고장났어요")
    assert kim.public and kim.reply_to == first and kim.language_hint == "ko"
    assert (lee.text, lee.language_hint, lee.reply_to) == ("There is a pothole on Main Street", "en", second)


async def test_restart_neither_misses_nor_repeats(
    fake: FakeX, host: RecordingHost, make_channel: Callable[..., XChannel]
) -> None:
    before = [fake.add_mention("200", "kim", f"@city early {i}") for i in range(2)]
    channel = make_channel(poll_direct_messages=False)
    await channel.start(host)
    await until(lambda: len(host.calls) == 2)
    await channel.stop()

    # While the bot is down seven more arrive: more than one page (page_size 5).
    during = [fake.add_mention("201", "lee", f"@city while down {i}") for i in range(7)]
    polls_before = len(fake.of("mentions"))
    again = make_channel(poll_direct_messages=False)
    await again.start(host)
    await until(lambda: len(host.calls) == 9)
    await until(lambda: len(fake.of("mentions")) > polls_before + 3)  # a few more polls: still nothing new

    assert ids(host.calls) == [f"tweet-{i}" for i in before + during]
    assert fake.of("mentions")[polls_before].query["since_id"] == before[-1]
    assert host.cursors[("x", "mentions")] == during[-1]


async def test_first_run_takes_only_the_newest_page(
    fake: FakeX, host: RecordingHost, make_channel: Callable[..., XChannel]
) -> None:
    history = [fake.add_mention("200", "kim", f"@city old {i}") for i in range(8)]
    channel = make_channel(poll_direct_messages=False)
    await channel.start(host)
    await until(lambda: len(fake.of("mentions")) >= 3)
    assert ids(host.calls) == [f"tweet-{i}" for i in history[-5:]]
    assert "pagination_token" not in fake.of("mentions")[0].query


async def test_the_cursor_moves_after_each_intake_and_a_failed_intake_is_retried(
    fake: FakeX, host: RecordingHost, make_channel: Callable[..., XChannel]
) -> None:
    tweets = [fake.add_mention("200", "kim", f"@city number {i}") for i in range(3)]
    host.fail_intake_of.add(f"tweet-{tweets[1]}")
    channel = make_channel(poll_direct_messages=False)
    await channel.start(host)
    await until(lambda: len(host.messages) == 3)
    # 0 taken and saved; 1 failed (cursor stays at 0); next poll: 1 again, then 2.
    assert ids(host.calls) == [f"tweet-{t}" for t in (tweets[0], tweets[1], tweets[1], tweets[2])]
    assert host.cursor_at_intake == [None, tweets[0], tweets[0], tweets[1]]


async def test_direct_messages_skip_the_citys_own_and_survive_a_restart(
    fake: FakeX, host: RecordingHost, make_channel: Callable[..., XChannel]
) -> None:
    first = fake.add_dm("200", "소파 버리는 방법", username="kim")
    channel = make_channel(mentions_poll_seconds=60)
    await channel.send(OutboundMessage(channel="x", recipient="200", text="답변입니다", idempotency_key="k1"))
    second = fake.add_dm("201", "hello")
    await channel.start(host)
    await until(lambda: host.cursors.get(("x", "dms")) == second)
    assert ids(host.calls) == [f"dm-{first}", f"dm-{second}"]
    dm = host.messages[0]
    assert (dm.sender, dm.sender_name, dm.text, dm.public, dm.reply_to) == (
        "200",
        "@kim",
        "소파 버리는 방법",
        False,
        None,
    )
    await channel.stop()

    third = fake.add_dm("200", "감사합니다")
    again = make_channel(mentions_poll_seconds=60)
    await again.start(host)
    await until(lambda: host.cursors.get(("x", "dms")) == third)
    assert ids(host.calls) == [f"dm-{first}", f"dm-{second}", f"dm-{third}"]


async def test_a_429_waits_for_the_reset_time(
    fake: FakeX, host: RecordingHost, make_channel: Callable[..., XChannel]
) -> None:
    fake.limits["mentions"] = (1, 0.4)
    channel = make_channel(poll_direct_messages=False)
    await channel.start(host)
    await until(lambda: [r.status for r in fake.of("mentions")][:3] == [200, 429, 200], timeout=4)
    ok, limited, after = fake.of("mentions")[:3]
    reset = math.ceil(fake.arrival(ok) + 0.4)  # the x-rate-limit-reset the 429 carried (epoch seconds)
    assert fake.arrival(after) >= reset - 0.01, "polled again before X's reset time"
    assert fake.arrival(after) - reset < 5.0, "waited much longer than the reset time (the fallback is 60 s)"
    assert fake.arrival(limited) < reset


async def test_errors_back_off_and_the_loop_survives(
    fake: FakeX, host: RecordingHost, make_channel: Callable[..., XChannel]
) -> None:
    fake.fail_next(5, 503, endpoint="me")
    channel = make_channel(
        poll_direct_messages=False,
        mentions_poll_seconds=0.01,
        error_backoff_seconds=0.05,
        max_backoff_seconds=0.2,
    )
    await channel.start(host)
    tweet = fake.add_mention("200", "kim", "@city after the outage")
    await until(lambda: ids(host.messages) == [f"tweet-{tweet}"])
    attempts = fake.of("me")
    assert [r.status for r in attempts] == [503] * 5 + [200]
    gaps = [fake.arrival(later) - fake.arrival(earlier) for earlier, later in itertools.pairwise(attempts)]
    # Doubling from 0.05 s up to 0.2 s, where the poll interval alone would be 0.01 s.
    assert all(gap >= 0.95 * wait for gap, wait in zip(gaps, [0.05, 0.1, 0.2, 0.2, 0.2], strict=True))


async def test_bad_credentials_are_logged_loudly_and_polling_goes_on(
    fake: FakeX, host: RecordingHost, make_channel: Callable[..., XChannel], caplog: pytest.LogCaptureFixture
) -> None:
    channel = make_channel(poll_direct_messages=False, consumer_secret="wrong")
    with caplog.at_level(logging.ERROR, logger="channels.x"):
        await channel.start(host)
        await until(lambda: len(fake.of("me")) >= 3)
    assert any("credentials" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    assert all(not t.done() for t in channel._pollers)


async def test_stop_is_prompt_even_while_x_hangs(
    fake: FakeX, host: RecordingHost, make_channel: Callable[..., XChannel]
) -> None:
    fake.hang = True
    channel = make_channel()
    await channel.start(host)
    await until(lambda: any(r.status is None for r in fake.requests))
    started = time.monotonic()
    await asyncio.wait_for(channel.stop(), timeout=10)  # X hangs forever: only cancelling ends it
    await channel.stop()  # twice is fine
    assert time.monotonic() - started < 10 and channel._pollers == []


# -- sending ------------------------------------------------------------------------------------------


def outbound(
    text: str = "접수했습니다", *, recipient: str = "200", reply_to: str | None = None, key: str = "k"
) -> OutboundMessage:
    return OutboundMessage(
        channel="x", recipient=recipient, text=text, idempotency_key=key, reply_to=reply_to
    )


async def test_a_reply_is_a_public_tweet_in_the_thread(
    fake: FakeX, make_channel: Callable[..., XChannel]
) -> None:
    mention = fake.add_mention("200", "kim", "@city 가로등")
    channel = make_channel()
    result = await channel.send(outbound("접수번호 2026-000001", reply_to=mention))
    [tweet] = fake.tweets
    assert (tweet.text, tweet.in_reply_to) == ("접수번호 2026-000001", mention)
    assert result.provider_message_id == f"tweet-{tweet.id}" and fake.dms == []

    await channel.send(outbound("긴 답변 " * 100, reply_to=mention, key="k2"))  # too long for a Tweet: cut
    assert fake.tweets[1].text.endswith("…") and tweet_weighted_length(fake.tweets[1].text) <= 280


async def test_without_reply_to_it_is_a_dm_with_buttons_as_text(
    fake: FakeX, make_channel: Callable[..., XChannel]
) -> None:
    channel = make_channel()
    message = OutboundMessage(
        channel="x",
        recipient="200",
        text="답변이 도움이 되었나요?",
        idempotency_key="k",
        buttons=(Button("좋아요", "5"), Button("별로예요", "1")),
    )
    result = await channel.send(message)
    [dm] = fake.dms
    assert (
        dm.recipient_id == "200" and dm.text.startswith("답변이 도움이 되었나요?") and "5: 좋아요" in dm.text
    )
    assert result.provider_message_id == f"dm-{dm.id}" and fake.tweets == []


async def test_a_long_dm_goes_in_parts(fake: FakeX, make_channel: Callable[..., XChannel]) -> None:
    text = "\n".join(f"줄 {i} " + "가" * 50 for i in range(500))  # about 28,000 characters
    await make_channel().send(outbound(text))
    assert len(fake.dms) == 3 and all(len(d.text) <= 10_000 for d in fake.dms)
    assert "\n".join(d.text for d in fake.dms).split() == text.split()


@pytest.mark.parametrize(
    ("arrange", "message", "error"),
    [
        (lambda f: f.dm_closed.add("300"), outbound(recipient="300"), PermanentSendError),
        (lambda f: f.fail_next(1, 503), outbound(), TransientSendError),
        (lambda f: f.fail_next(1, 500, endpoint="tweets"), outbound(reply_to="MENTION"), TransientSendError),
        (lambda f: setattr(f, "down", True), outbound(), TransientSendError),
        (lambda f: None, outbound(reply_to="12345"), PermanentSendError),  # replying to a deleted Tweet
        (lambda f: None, outbound(recipient="@kim"), PermanentSendError),
        (lambda f: None, outbound("x" * 0), PermanentSendError),  # X refuses an empty DM (400)
    ],
)
async def test_send_failures_are_classified(
    fake: FakeX,
    make_channel: Callable[..., XChannel],
    arrange: Callable[[FakeX], object],
    message: OutboundMessage,
    error: type[Exception],
) -> None:
    mention = fake.add_mention("200", "kim", "@city hi")
    if message.reply_to == "MENTION":
        message = outbound(reply_to=mention)
    arrange(fake)
    with pytest.raises(error):
        await make_channel().send(message)
    assert fake.dms == [] and fake.tweets == []


async def test_a_429_on_send_carries_the_reset(fake: FakeX, make_channel: Callable[..., XChannel]) -> None:
    fake.limits["dm_send"] = (0, 60)
    with pytest.raises(TransientSendError) as caught:
        await make_channel().send(outbound())
    assert caught.value.retry_after is not None and 58 <= caught.value.retry_after <= 61


async def test_a_hang_is_a_transient_timeout(fake: FakeX, make_channel: Callable[..., XChannel]) -> None:
    fake.hang = True
    with pytest.raises(TransientSendError):
        await make_channel(request_timeout_seconds=0.2).send(outbound())


async def test_bad_credentials_are_permanent_and_loud(
    fake: FakeX, make_channel: Callable[..., XChannel], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="channels.x"), pytest.raises(PermanentSendError):
        await make_channel(access_token_secret="wrong").send(outbound())
    assert any("credentials" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


async def test_duplicate_is_permanent_unless_our_own_earlier_attempt_posted_it(
    fake: FakeX, make_channel: Callable[..., XChannel]
) -> None:
    mention = fake.add_mention("200", "kim", "@city hi")
    channel = make_channel(request_timeout_seconds=0.3)
    fake.hang = True
    with pytest.raises(TransientSendError):
        await channel.send(outbound("접수번호 2026-000007", reply_to=mention, key="reply-7"))
    fake.hang = False  # X goes on with the request it held: the reply is posted after all
    await until(lambda: len(fake.tweets) == 1)

    assert (await channel.send(outbound("접수번호 2026-000007", reply_to=mention, key="reply-7"))) is not None
    with pytest.raises(PermanentSendError, match="duplicate"):
        await channel.send(outbound("접수번호 2026-000007", reply_to=mention, key="another"))
    assert len(fake.tweets) == 1


# -- webhook (Account Activity) -----------------------------------------------------------------------


@pytest.fixture
async def webhook(
    fake: FakeX, host: RecordingHost, make_channel: Callable[..., XChannel]
) -> AsyncIterator[TestClient[Any, Any]]:
    channel = make_channel(mode="webhook")
    app = web.Application()
    app.add_routes(channel.routes())
    await channel.start(host)
    async with TestClient(TestServer(app)) as client:
        yield client


async def post_event(
    client: TestClient[Any, Any],
    payload: Any,
    *,
    secret: str = SECRET,
    body: bytes | None = None,
    signature: str | None = None,
) -> tuple[int, dict[str, Any]]:
    raw = body if body is not None else json.dumps(payload).encode()
    headers = {"x-twitter-webhooks-signature": signature if signature is not None else sign_body(secret, raw)}
    response = await client.post(
        "/webhooks/x", data=raw, headers={**headers, "Content-Type": "application/json"}
    )
    return response.status, await response.json()


def mention_event(
    text: str = "@city 가로등이 고장났어요", *, tweet_id: str = "1800000000000000001", user_id: str = "200"
) -> dict[str, Any]:
    return aaa_tweet_create(
        "100", tweet_id=tweet_id, text=text, user_id=user_id, screen_name="kim", mentions=[("100", "city")]
    )


async def test_crc_is_answered_with_the_consumer_secret(webhook: TestClient[Any, Any]) -> None:
    response = await webhook.get("/webhooks/x", params={"crc_token": "Ykk3YmNkM2QtMjlkZi00M2Ex"})
    assert response.status == 200
    assert await response.json() == crc_response(SECRET, "Ykk3YmNkM2QtMjlkZi00M2Ex")
    assert (await webhook.get("/webhooks/x")).status == 400
    # A token shaped like an event body would turn the CRC answer into a signing oracle.
    forged = json.dumps(mention_event())
    assert (await webhook.get("/webhooks/x", params={"crc_token": forged})).status == 400


async def test_a_signed_mention_is_taken(
    webhook: TestClient[Any, Any], host: RecordingHost, fake: FakeX
) -> None:
    status, _ = await post_event(webhook, mention_event("@city @lee 가로등이 고장났어요"))
    assert status == 200
    [message] = host.messages
    assert (message.provider_message_id, message.sender, message.sender_name) == (
        "tweet-1800000000000000001",
        "200",
        "@kim",
    )
    assert (message.text, message.public, message.reply_to) == (
        "가로등이 고장났어요",
        True,
        "1800000000000000001",
    )
    assert fake.requests == []  # webhook mode never polls


async def test_forged_missing_and_malformed_signatures_are_refused(
    webhook: TestClient[Any, Any], host: RecordingHost
) -> None:
    payload = mention_event()
    assert (await post_event(webhook, payload, secret="not-the-secret"))[0] == 403
    assert (await post_event(webhook, payload, signature=""))[0] == 403
    assert (await post_event(webhook, payload, signature="sha256=!!!not base64"))[0] == 403
    tampered = json.dumps(payload).encode()
    assert (
        await post_event(
            webhook, None, body=tampered.replace(b"\\uac00", b"X"), signature=sign_body(SECRET, tampered)
        )
    )[0] == 403
    assert host.calls == []


async def test_a_replayed_event_changes_nothing(webhook: TestClient[Any, Any], host: RecordingHost) -> None:
    body = json.dumps(mention_event()).encode()
    first = await post_event(webhook, None, body=body)
    replay = await post_event(webhook, None, body=body)
    assert first == (200, {"accepted": True, "duplicate": False})
    assert replay == (200, {"accepted": True, "duplicate": True})
    assert len(host.messages) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"tweet_create_events": []}',
        json.dumps({"for_user_id": "100", "tweet_create_events": [{"id_str": "1"}]}).encode(),
    ],
)
async def test_malformed_bodies_are_400(
    webhook: TestClient[Any, Any], host: RecordingHost, body: bytes
) -> None:
    assert (await post_event(webhook, None, body=body))[0] == 400
    assert host.calls == []


async def test_an_oversized_body_is_413(webhook: TestClient[Any, Any], host: RecordingHost) -> None:
    payload = mention_event()
    payload["padding"] = "x" * (300 * 1024)
    assert (await post_event(webhook, payload))[0] == 413
    assert host.calls == []


async def test_a_body_arriving_in_pieces_is_read_whole(
    webhook: TestClient[Any, Any], host: RecordingHost
) -> None:
    payload = mention_event()
    payload["padding"] = "x" * 20_000
    body = json.dumps(payload).encode()

    async def in_pieces() -> AsyncIterator[bytes]:
        yield body[:1000]
        await asyncio.sleep(0.05)
        yield body[1000:]

    headers = {"x-twitter-webhooks-signature": sign_body(SECRET, body)}
    response = await webhook.post("/webhooks/x", data=in_pieces(), headers=headers)
    assert response.status == 200 and len(host.messages) == 1


async def test_own_tweets_own_dms_and_non_mentions_are_ignored(
    webhook: TestClient[Any, Any], host: RecordingHost
) -> None:
    own_tweet = aaa_tweet_create(
        "100",
        tweet_id="11",
        text="@city our own",
        user_id="100",
        screen_name="city",
        mentions=[("100", "city")],
    )
    elsewhere = aaa_tweet_create(
        "100", tweet_id="12", text="@lee hello", user_id="200", screen_name="kim", mentions=[("201", "lee")]
    )
    own_dm = aaa_dm(
        "100",
        event_id="13",
        sender_id="100",
        recipient_id="200",
        text="our answer",
        sender_screen_name="city",
    )
    for payload in (own_tweet, elsewhere, own_dm):
        assert (await post_event(webhook, payload)) == (200, {"accepted": True, "duplicate": True})
    assert host.calls == []


async def test_a_long_tweet_is_read_in_full(webhook: TestClient[Any, Any], host: RecordingHost) -> None:
    text = "@city " + "길이 " * 100
    assert (await post_event(webhook, mention_event(text)))[0] == 200
    assert host.messages[0].text == text.removeprefix("@city ").strip()


async def test_a_dm_event_is_a_private_message(webhook: TestClient[Any, Any], host: RecordingHost) -> None:
    payload = aaa_dm(
        "100",
        event_id="555",
        sender_id="200",
        recipient_id="100",
        text="소파 버리는 방법",
        sender_screen_name="kim",
    )
    assert (await post_event(webhook, payload))[0] == 200
    [dm] = host.messages
    assert (dm.provider_message_id, dm.sender, dm.sender_name, dm.text, dm.public) == (
        "dm-555",
        "200",
        "@kim",
        "소파 버리는 방법",
        False,
    )


async def test_polling_mode_serves_no_webhook(make_channel: Callable[..., XChannel]) -> None:
    assert make_channel().routes() == []
