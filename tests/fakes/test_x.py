"""The X stand-in against the real tweepy AsyncClient: if these pass, it answers as tweepy expects
and refuses what X refuses."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
import tweepy
from oauthlib.oauth1 import Client as OAuthClient
from tweepy.asynchronous import AsyncClient

from channels.x import api_session
from tests.fakes.x import (
    TWITTER_EPOCH_MS,
    FakeX,
    aaa_dm,
    aaa_tweet_create,
    crc_response,
    sign_body,
    tweet_weighted_length,
)

SECRET = "consumer-secret-for-tests"


@pytest.fixture
async def fake() -> AsyncIterator[FakeX]:
    async with FakeX(consumer_secret=SECRET, me_id="100", me_username="city") as f:
        yield f


def client_for(fake: FakeX, *, timeout: float = 5.0, **overrides: object) -> AsyncClient:
    client = AsyncClient(**{**fake.client_kwargs, **overrides})
    client.session = api_session(fake.base_url, timeout=timeout)
    return client


@pytest.fixture
async def client(fake: FakeX) -> AsyncIterator[AsyncClient]:
    client = client_for(fake)
    yield client
    await client.session.close()


async def mentions(client: AsyncClient, **params: object) -> tweepy.Response:
    return await client.get_users_mentions(
        "100",
        user_auth=True,
        expansions="author_id",
        tweet_fields=["lang", "created_at", "author_id"],
        user_fields=["username"],
        **params,
    )


async def test_get_me_answers_the_account_and_is_recorded(client: AsyncClient, fake: FakeX) -> None:
    before = time.time()
    me = (await client.get_me()).data
    assert (me.id, me.username) == (100, "city")
    [seen] = fake.requests
    assert (seen.method, seen.path, seen.endpoint, seen.status) == ("GET", "/2/users/me", "me", 200)
    assert before <= fake.arrival(seen) <= time.time()


async def test_mentions_since_id_newest_first_with_authors(client: AsyncClient, fake: FakeX) -> None:
    old = fake.add_mention("200", "kim", "@city 예전 민원")
    newer = fake.add_mention("201", "lee", "@City 가로등이 고장났어요", lang="ko")
    newest = fake.add_mention("200", "kim", "hello @city, the bus stop", lang="en")
    fake.add_mention("202", "park", "@cityhall is not us but @city is")
    mine = fake.add_mention("100", "city", "@city talking to myself")  # X lists your own mentions too
    assert int(old) < int(newer) < int(newest) < int(mine)

    response = await mentions(client, since_id=old)
    ids = [t.id for t in response.data]
    assert ids == sorted(ids, reverse=True) and str(ids[-1]) == newer and len(ids) == 4
    assert response.meta == {"result_count": 4}
    tweet = next(t for t in response.data if str(t.id) == newest)
    assert (tweet.author_id, tweet.lang, tweet.text) == (200, "en", "hello @city, the bus stop")
    assert abs(tweet.created_at.timestamp() - time.time()) < 5  # from the snowflake id
    assert {u.username for u in response.includes["users"]} == {"kim", "lee", "park", "city"}
    assert fake.of("mentions")[0].query["since_id"] == old

    # Only the fields asked for, as X answers.
    bare = await client.get_users_mentions("100", user_auth=True)
    assert bare.includes == {} and all(t.lang is None and t.author_id is None for t in bare.data)

    nothing = await mentions(client, since_id=mine)
    assert nothing.data is None and nothing.meta == {"result_count": 0}


async def test_mentions_paginate_without_gaps_or_repeats(client: AsyncClient, fake: FakeX) -> None:
    since = fake.add_mention("200", "kim", "@city before the cursor")
    posted = [fake.add_mention("200", "kim", f"@city number {i}") for i in range(12)]
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        response = await mentions(client, since_id=since, max_results=5, pagination_token=token)
        seen.extend(str(t.id) for t in response.data)
        pages += 1
        token = response.meta.get("next_token")
        if token is None:
            break
    assert pages == 3
    assert seen == list(reversed(posted))


async def test_mentions_refuse_out_of_range_max_results(client: AsyncClient) -> None:
    with pytest.raises(tweepy.errors.BadRequest, match="max_results"):
        await mentions(client, max_results=4)


async def test_reply_tweet_is_recorded_and_limits_hold(client: AsyncClient, fake: FakeX) -> None:
    mention = fake.add_mention("200", "kim", "@city 민원")
    before = time.monotonic()
    response = await client.create_tweet(text="@kim 접수번호 2026-000001", in_reply_to_tweet_id=mention)
    assert response.data["text"] == "@kim 접수번호 2026-000001"
    [tweet] = fake.tweets
    assert (tweet.id, tweet.in_reply_to) == (response.data["id"], mention) and tweet.at >= before

    with pytest.raises(tweepy.errors.Forbidden, match="duplicate content"):
        await client.create_tweet(text="@kim 접수번호 2026-000001", in_reply_to_tweet_id=mention)
    with pytest.raises(tweepy.errors.Forbidden, match="deleted or not visible"):
        await client.create_tweet(text="reply to nothing", in_reply_to_tweet_id="12345")
    # Korean weighs 2: 140 syllables fill a Tweet, 141 do not.
    await client.create_tweet(text="가" * 140)
    with pytest.raises(tweepy.errors.BadRequest, match="too long"):
        await client.create_tweet(text="나" * 141)
    await client.create_tweet(text="a" * 280)
    with pytest.raises(tweepy.errors.BadRequest):
        await client.create_tweet(text="b" * 281)
    assert len(fake.tweets) == 3


def test_weighted_length_counts_like_twitter_text() -> None:
    assert tweet_weighted_length("abc") == 3
    assert tweet_weighted_length("가나다") == 6
    assert tweet_weighted_length("see https://example.com/a/very/long/path/indeed?x=1 ok") == 4 + 23 + 3
    assert tweet_weighted_length("café") == tweet_weighted_length("cafe\u0301")  # NFC first


async def test_own_replies_are_not_mentions_of_the_city(client: AsyncClient, fake: FakeX) -> None:
    mention = fake.add_mention("200", "kim", "@city hi")
    await client.create_tweet(text="@kim hello back", in_reply_to_tweet_id=mention)
    await client.create_tweet(text="@city note to self")
    texts = [t.text for t in (await mentions(client)).data]
    assert texts == ["@city note to self", "@city hi"]


async def test_direct_messages_both_ways(client: AsyncClient, fake: FakeX) -> None:
    first = fake.add_dm("200", "안녕하세요", username="kim")
    response = await client.create_direct_message(participant_id="200", text="무엇을 도와드릴까요?")
    assert response.data["dm_conversation_id"] == "100-200"
    [sent] = fake.dms
    assert (sent.recipient_id, sent.text, sent.id) == (
        "200",
        "무엇을 도와드릴까요?",
        response.data["dm_event_id"],
    )
    second = fake.add_dm("201", "second")

    events = await client.get_direct_message_events(
        dm_event_fields=["sender_id", "created_at", "dm_conversation_id"],
        event_types="MessageCreate",
        expansions="sender_id",
    )
    assert [str(e.id) for e in events.data] == [second, sent.id, first]
    assert [e.sender_id for e in events.data] == [201, 100, 200]  # the city's own DM is listed too
    assert {u.username for u in events.includes["users"]} == {"kim", "user201", "city"}


async def test_dm_events_paginate(client: AsyncClient, fake: FakeX) -> None:
    ids = [fake.add_dm("200", f"message {i}") for i in range(7)]
    seen: list[str] = []
    token = None
    while True:
        page = await client.get_direct_message_events(max_results=3, pagination_token=token)
        seen.extend(str(e.id) for e in page.data)
        token = page.meta.get("next_token")
        if token is None:
            break
    assert seen == list(reversed(ids))


async def test_dm_refused_when_closed_or_too_long(client: AsyncClient, fake: FakeX) -> None:
    fake.dm_closed.add("300")
    with pytest.raises(tweepy.errors.Forbidden):
        await client.create_direct_message(participant_id="300", text="hello")
    with pytest.raises(tweepy.errors.BadRequest):
        await client.create_direct_message(participant_id="200", text="x" * 10_001)
    await client.create_direct_message(participant_id="200", text="x" * 10_000)
    assert [d.recipient_id for d in fake.dms] == ["200"]


async def test_rate_limit_429_carries_the_reset(fake: FakeX) -> None:
    fake.limits["mentions"] = (2, 60)
    raw = client_for(fake, return_type=aiohttp.ClientResponse)
    try:
        first = await raw.get_users_mentions("100", user_auth=True)
        assert first.headers["x-rate-limit-limit"] == "2" and first.headers["x-rate-limit-remaining"] == "1"
        await raw.get_users_mentions("100", user_auth=True)
        with pytest.raises(tweepy.errors.TooManyRequests) as caught:
            await raw.get_users_mentions("100", user_auth=True)
        now = time.time()
        assert caught.value.reset_time is not None and now + 55 < caught.value.reset_time <= now + 62
        assert caught.value.response.headers["x-rate-limit-remaining"] == "0"
        assert (await raw.get_me()).status == 200  # windows are per endpoint
    finally:
        await raw.session.close()


async def test_rate_limit_window_reopens(client: AsyncClient, fake: FakeX) -> None:
    fake.limits["me"] = (1, 0.3)
    await client.get_me()
    with pytest.raises(tweepy.errors.TooManyRequests):
        await client.get_me()
    deadline = time.monotonic() + 3
    while True:
        try:
            await client.get_me()
            break
        except tweepy.errors.TooManyRequests:
            assert time.monotonic() < deadline, "the window never reopened"
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    "overrides",
    [{"consumer_secret": "wrong"}, {"access_token_secret": "wrong"}, {"consumer_key": "other-app"}],
)
async def test_bad_credentials_are_unauthorized(fake: FakeX, overrides: dict[str, str]) -> None:
    bad = client_for(fake, **overrides)
    try:
        with pytest.raises(tweepy.errors.Unauthorized):
            await bad.get_me()
    finally:
        await bad.session.close()
    assert fake.tweets == []


async def test_missing_stale_replayed_and_app_only_auth_are_refused(fake: FakeX) -> None:
    url = f"{fake.base_url}/2/users/me"
    credentials = fake.client_kwargs
    keys = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
    signer = OAuthClient(*(credentials[k] for k in keys))
    _, headers, _ = signer.sign("https://api.twitter.com/2/users/me", "GET")
    stale_signer = OAuthClient(*(credentials[k] for k in keys), timestamp=str(int(time.time()) - 3600))
    _, stale, _ = stale_signer.sign("https://api.twitter.com/2/users/me", "GET")
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            assert response.status == 401 and (await response.json())["title"] == "Unauthorized"
        async with session.get(url, headers=headers) as response:
            assert response.status == 200
        async with session.get(url, headers=headers) as response:  # the same nonce again
            assert response.status == 401
        async with session.get(url, headers=stale) as response:
            assert response.status == 401
        async with session.get(url, headers={"Authorization": 'OAuth oauth_consumer_key="x"'}) as response:
            assert response.status == 401
        async with session.get(url, headers={"Authorization": "Bearer app-token"}) as response:
            assert response.status == 401  # the adapter acts as the account: user context only


async def test_fail_next_then_recovers(client: AsyncClient, fake: FakeX) -> None:
    fake.fail_next(2, 503)
    fake.fail_next(1, status=500)
    for status in (503, 503, 500):
        with pytest.raises(tweepy.errors.TwitterServerError) as caught:
            await client.get_me()
        assert caught.value.response.status == status
    assert (await client.get_me()).data.username == "city"


async def test_fail_next_can_target_one_endpoint(client: AsyncClient, fake: FakeX) -> None:
    fake.fail_next(1, 503, endpoint="dm_send")
    assert (await client.get_me()).data.id == 100
    with pytest.raises(tweepy.errors.TwitterServerError):
        await client.create_direct_message(participant_id="200", text="hello")
    await client.create_direct_message(participant_id="200", text="hello")
    assert [r.status for r in fake.of("dm_send")] == [503, 201]


async def test_down_answers_503_in_xs_format_until_up(client: AsyncClient, fake: FakeX) -> None:
    fake.down = True
    with pytest.raises(tweepy.errors.TwitterServerError) as caught:
        await client.create_direct_message(participant_id="200", text="hello")
    assert caught.value.api_messages == ["Service Unavailable"]
    assert fake.dms == [] and fake.requests[-1].status == 503
    fake.down = False
    await client.create_direct_message(participant_id="200", text="hello")
    assert len(fake.dms) == 1


async def test_hang_holds_answers_until_cleared(fake: FakeX) -> None:
    impatient = client_for(fake, timeout=0.2)
    try:
        fake.hang = True
        with pytest.raises(asyncio.TimeoutError):
            await impatient.get_me()
        assert fake.requests[-1].status is None
        fake.hang = False
        assert (await impatient.get_me()).data.id == 100
    finally:
        await impatient.session.close()


def test_ids_are_time_ordered_snowflakes() -> None:
    fake = FakeX(consumer_secret=SECRET)
    ids = [int(fake.next_id()) for _ in range(1000)]
    assert ids == sorted(set(ids))
    made_at_ms = (ids[0] >> 22) + TWITTER_EPOCH_MS
    assert abs(made_at_ms - time.time() * 1000) < 5_000


def test_add_mention_insists_on_mentioning_the_city() -> None:
    fake = FakeX(consumer_secret=SECRET, me_username="city")
    with pytest.raises(ValueError):
        fake.add_mention("200", "kim", "no handle here")
    with pytest.raises(ValueError):
        fake.add_mention("200", "kim", "@cityhall is someone else")


def test_crc_and_body_signatures_follow_x() -> None:
    expected = base64.b64encode(hmac.new(b"s3cret", b"crc-token-1", hashlib.sha256).digest()).decode()
    assert crc_response("s3cret", "crc-token-1") == {"response_token": "sha256=" + expected}
    body = json.dumps({"for_user_id": "100"}).encode()
    signature = sign_body("s3cret", body)
    assert signature.startswith("sha256=") and len(base64.b64decode(signature[7:])) == 32
    assert signature != sign_body("s3cret", body + b" ") != sign_body("other", body)


def test_aaa_tweet_create_shape() -> None:
    payload = aaa_tweet_create(
        "100",
        tweet_id="1800000000000000001",
        text="@city 가로등이 고장났어요",
        user_id="200",
        screen_name="kim",
        mentions=[("100", "city")],
    )
    assert payload["for_user_id"] == "100"
    [tweet] = payload["tweet_create_events"]
    assert tweet["id_str"] == "1800000000000000001" and tweet["user"]["screen_name"] == "kim"
    [mention] = tweet["entities"]["user_mentions"]
    start, end = mention["indices"]
    assert tweet["text"][start:end] == "@city" and mention["id_str"] == "100"
    assert tweet["truncated"] is False and "extended_tweet" not in tweet


def test_aaa_long_tweet_arrives_truncated_with_the_full_text_aside() -> None:
    text = "@city " + "길" * 200
    [tweet] = aaa_tweet_create(
        "100", tweet_id="1", text=text, user_id="200", screen_name="kim", mentions=[("100", "city")]
    )["tweet_create_events"]
    assert tweet["truncated"] is True and len(tweet["text"]) <= 140 and tweet["text"] != text
    assert tweet["extended_tweet"]["full_text"] == text


def test_aaa_dm_shape() -> None:
    payload = aaa_dm(
        "100", event_id="555", sender_id="200", recipient_id="100", text="hi", sender_screen_name="kim"
    )
    [event] = payload["direct_message_events"]
    assert event["type"] == "message_create" and event["id"] == "555"
    create = event["message_create"]
    assert (create["sender_id"], create["target"]["recipient_id"], create["message_data"]["text"]) == (
        "200",
        "100",
        "hi",
    )
    assert payload["users"]["200"]["screen_name"] == "kim"
