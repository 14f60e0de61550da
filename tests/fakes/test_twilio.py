"""The fake Twilio, exercised with the real twilio SDK (and plain aiohttp where the SDK would not
send what is being tested). What every stand-in shares (fail_next, down, hang) is tested in
test_server.py; here, what the Twilio stand-in makes of it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from channels.segments import sms_segments
from tests.fakes.twilio import SPEC, FakeTwilio, inbound_params, new_sid, segment_count, sign

TOKEN = "f" * 32
CITIZEN = "+821012345678"
CITY = "+15005550006"
SERVICE = "MG" + "a" * 32
MESSAGE_PROPERTIES = set(SPEC["components"]["schemas"]["api.v2010.account.message"]["properties"])


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(new_sid("AC"), TOKEN) as running:
        yield running


@asynccontextmanager
async def twilio_client(
    fake: FakeTwilio, token: str = TOKEN
) -> AsyncIterator[tuple[Client, AsyncTwilioHttpClient]]:
    http = AsyncTwilioHttpClient()
    client = Client(fake.account_sid, token, http_client=http)
    client.edge = client.region = None  # TWILIO_EDGE/TWILIO_REGION in the environment would rewrite the host
    client.api.base_url = fake.base_url
    try:
        yield client, http
    finally:
        await http.close()


async def post_form(
    fake: FakeTwilio, fields: list[tuple[str, str]], **kwargs: object
) -> aiohttp.ClientResponse:
    """A send built by hand, for what the SDK would never put on the wire."""
    url = f"{fake.base_url}/2010-04-01/Accounts/{kwargs.pop('account', fake.account_sid)}/Messages.json"
    headers = {
        "Content-Type": str(kwargs.pop("content_type", "application/x-www-form-urlencoded")),
        "Authorization": aiohttp.encode_basic_auth(fake.account_sid, TOKEN),
    }
    async with aiohttp.ClientSession() as session:
        response = await session.post(url, data=urlencode(fields), headers=headers)
        await response.read()
        return response


async def test_a_send_through_the_real_sdk_is_recorded_and_answered_as_the_spec_says(
    fake: FakeTwilio,
) -> None:
    async with twilio_client(fake) as (client, http):
        message = await client.messages.create_async(
            to=CITIZEN,
            from_=CITY,
            body="a" * 161,
            media_url=["https://city.example/a.png", "https://city.example/b.png"],
            status_callback="https://city.example/webhooks/sms/status?key=k1",
        )
        resource = json.loads(http._test_only_last_response.text)
    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert message.status == "queued" and message.num_media == "2"
    assert set(resource) == MESSAGE_PROPERTIES  # the JSON Message as the spec has it
    assert resource["date_created"].endswith(" +0000") and resource["date_sent"] is None  # RFC 2822
    [sms] = fake.sent
    assert (sms.to, sms.from_, sms.messaging_service_sid, sms.sid) == (CITIZEN, CITY, None, message.sid)
    assert sms.media_urls == ["https://city.example/a.png", "https://city.example/b.png"]
    assert sms.status_callback == "https://city.example/webhooks/sms/status?key=k1"
    assert fake.spec_violations == [] and fake.failed_attempts == 0 and fake.attempts == 1


@pytest.mark.parametrize(
    ("body", "segments"),
    [("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3), ("{" * 80, 1), ("{" * 81, 2),
     ("가" * 70, 1), ("가" * 71, 2), ("가" * 134, 2), ("가" * 135, 3), ("😀" * 35, 1), ("a" * 66 + "😀", 1),
     ("가" * 69 + "{", 1)],
)  # fmt: skip
async def test_num_segments_is_computed_as_twilio_bills(fake: FakeTwilio, body: str, segments: int) -> None:
    async with twilio_client(fake) as (client, _):
        message = await client.messages.create_async(to=CITIZEN, messaging_service_sid=SERVICE, body=body)
    assert message.num_segments == str(segments)
    assert fake.sent[0].from_ is None and fake.sent[0].messaging_service_sid == SERVICE
    # Written apart from channels/segments.py: the two must agree.
    assert segment_count(body) == sms_segments(body) == segments


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ([("To", CITIZEN), ("From", CITY), ("Body", "hi"), ("Colour", "red")], "unknown parameter 'Colour'"),
        ([("From", CITY), ("Body", "hi")], "required parameter 'To' is missing"),
        ([("To", CITIZEN), ("From", CITY), ("MessagingServiceSid", SERVICE), ("Body", "hi")], "exactly one"),
        ([("To", CITIZEN), ("Body", "hi")], "exactly one"),
        ([("To", CITIZEN), ("From", CITY)], "one of Body, MediaUrl"),
        ([("To", CITIZEN), ("MessagingServiceSid", "MG123"), ("Body", "hi")], "does not match"),
        ([("To", CITIZEN), ("From", CITY), ("Body", "hi"), ("SendAsMms", "yes")], "is not a boolean"),
        ([("To", CITIZEN), ("From", CITY), ("Body", "hi"), ("ValidityPeriod", "soon")], "not an integer"),
        ([("To", CITIZEN), ("From", CITY), *[("MediaUrl", "https://city.example/m.png")] * 11], "at most 10"),
        ([("To", CITIZEN), ("From", CITY), ("Body", "hi"), ("TrafficType", "spam")], "is not one of"),
        (
            [("To", CITIZEN), ("From", CITY), ("Body", "hi"), ("StatusCallback", "/status")],
            "is not a URL",
        ),
        ([("To", CITIZEN), ("From", CITY), ("Body", "x" * 1601)], "more than 1600"),
        ([("To", CITIZEN), ("To", "+15550001111"), ("From", CITY), ("Body", "hi")], "given 2 times"),
    ],
)
async def test_a_request_that_breaks_the_spec_is_refused_and_recorded(
    fake: FakeTwilio, fields: list[tuple[str, str]], expected: str
) -> None:
    response = await post_form(fake, fields)
    assert response.status == 400
    assert (await response.json())["code"] > 0
    assert any(expected in violation for violation in fake.spec_violations), fake.spec_violations
    assert fake.sent == [] and fake.failed_attempts == 1


async def test_wrong_content_type_and_bad_account_sid_are_violations(fake: FakeTwilio) -> None:
    fields = [("To", CITIZEN), ("From", CITY), ("Body", "hi")]
    assert (await post_form(fake, fields, content_type="text/plain")).status == 400
    assert any("content type 'text/plain'" in v for v in fake.spec_violations)
    assert (await post_form(fake, fields, account="ACnothex")).status == 400
    assert any("AccountSid='ACnothex' does not match" in v for v in fake.spec_violations)


async def test_a_send_met_by_an_outage_is_checked_against_the_spec_too(fake: FakeTwilio) -> None:
    fake.down = True
    response = await post_form(fake, [("To", CITIZEN), ("Body", "hi")])
    assert response.status == 503 and (await response.json())["code"] == 20503
    assert [v.split(": ", 1)[1] for v in fake.spec_violations] == [
        "exactly one of From and MessagingServiceSid must be given"
    ]


async def test_a_path_outside_the_fake_is_a_violation(fake: FakeTwilio) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{fake.base_url}/2010-04-01/Nope.json") as r:
        assert r.status == 404
    assert fake.spec_violations == ["GET /2010-04-01/Nope.json: not an operation the fake serves"]


async def test_wrong_credentials_get_twilio_401(fake: FakeTwilio) -> None:
    async with twilio_client(fake, token="0" * 32) as (client, _):
        with pytest.raises(TwilioRestException) as refused:
            await client.messages.create_async(to=CITIZEN, from_=CITY, body="hi")
    assert (refused.value.status, refused.value.code) == (401, 20003)
    assert fake.sent == [] and fake.failed_attempts == 1


async def test_an_opted_out_number_gets_21610(fake: FakeTwilio) -> None:
    fake.opted_out.add(CITIZEN)
    async with twilio_client(fake) as (client, _):
        with pytest.raises(TwilioRestException) as refused:
            await client.messages.create_async(to=CITIZEN, from_=CITY, body="hi")
        assert (refused.value.status, refused.value.code) == (400, 21610)
        assert "unsubscribed recipient" in refused.value.msg
        fake.opted_out.clear()
        await client.messages.create_async(to=CITIZEN, from_=CITY, body="hi")
    assert len(fake.sent) == 1 and fake.failed_attempts == 1 and fake.spec_violations == []


async def test_invalid_and_landline_numbers_get_their_codes(fake: FakeTwilio) -> None:
    fake.landlines.add("+15557654321")
    async with twilio_client(fake) as (client, _):
        for to, code in (("010-1234", 21211), ("+15557654321", 21614)):
            with pytest.raises(TwilioRestException) as refused:
                await client.messages.create_async(to=to, from_=CITY, body="hi")
            assert refused.value.code == code
    assert fake.sent == []


async def test_injected_failures_come_in_twilios_error_format(fake: FakeTwilio) -> None:
    fake.fail_next(1, status=503, endpoint="CreateMessage", after=1)
    fake.fail_next(1, status=500)
    async with twilio_client(fake) as (client, _):
        await client.messages.create_async(to=CITIZEN, from_=CITY, body="hi")
        for status, code in ((503, 20503), (500, 20500)):
            with pytest.raises(TwilioRestException) as failed:
                await client.messages.create_async(to=CITIZEN, from_=CITY, body="hi")
            assert (failed.value.status, failed.value.code) == (status, code)
        fake.down = True
        with pytest.raises(TwilioException, match="Unable to fetch page") as down:
            await client.messages.list_async(to=CITIZEN)
        response = down.value.args[1]  # a listing's failure: the SDK keeps the response
        assert (response.status_code, json.loads(response.text)["code"]) == (503, 20503)
        fake.down = False
        await client.messages.create_async(to=CITIZEN, from_=CITY, body="hi")
    assert (len(fake.sent), fake.attempts, fake.failed_attempts) == (2, 4, 2)
    assert [r.endpoint for r in fake.requests] == ["CreateMessage"] * 3 + ["ListMessage", "CreateMessage"]


async def test_a_429_carries_retry_after(fake: FakeTwilio) -> None:
    fake.retry_after = 7
    fake.fail_next(1, status=429)
    response = await post_form(fake, [("To", CITIZEN), ("From", CITY), ("Body", "hi")])
    assert response.status == 429 and response.headers["Retry-After"] == "7"
    assert (await response.json())["code"] == 20429


async def test_a_send_held_by_hang_is_answered_503_not_taken_once_let_go(fake: FakeTwilio) -> None:
    fake.hang = True
    async with twilio_client(fake) as (client, _):
        send = asyncio.create_task(client.messages.create_async(to=CITIZEN, from_=CITY, body="hi"))
        await fake.wait_for(lambda f: f.failed_attempts == 1)  # the request arrived and is held
        assert not send.done()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await send
        fake.hang = False
        await fake.wait_for(lambda: fake.requests[0].status == 503)  # RecordingServer's form works too
        await client.messages.create_async(to=CITIZEN, from_=CITY, body="hi")
    assert len(fake.sent) == 1 and fake.spec_violations == []


async def test_media_needs_basic_auth_and_redirects_once_to_storage(fake: FakeTwilio) -> None:
    message_sid = new_sid("MM")
    url = fake.add_media(message_sid, b"\x89PNG photo", "image/png")
    assert url.startswith(
        f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Messages/{message_sid}/Media/ME"
    )
    auth = {"Authorization": aiohttp.encode_basic_auth(fake.account_sid, TOKEN)}
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as anonymous:
            assert anonymous.status == 401 and (await anonymous.json())["code"] == 20003
        async with session.get(url, headers=auth, allow_redirects=False) as first:
            assert first.status == 307 and first.headers["Location"].startswith(fake.storage_url)
            location = first.headers["Location"]
        # A client that carried the credentials on to storage would be refused, as S3 refuses it.
        async with session.get(location, headers=auth) as leaked:
            assert leaked.status == 400
        async with session.get(url, headers=auth) as followed:
            assert followed.status == 200 and followed.content_type == "image/png"
            assert await followed.read() == b"\x89PNG photo"
            assert len(followed.history) == 1
        fake.expire_media(url)
        async with session.get(url, headers=auth) as expired:
            assert expired.status == 404
        async with session.get(location) as gone:
            assert gone.status == 404
    assert fake.media_requests == 4


@asynccontextmanager
async def receiver() -> AsyncIterator[tuple[str, list[tuple[str, dict[str, str]]], list[int]]]:
    """A tiny local app that records each form POSTed to it with its signature header; answers
    the statuses queued in the third item (204 when none)."""
    received: list[tuple[str, dict[str, str]]] = []
    answers: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        received.append((request.headers.get("X-Twilio-Signature", ""), form))
        return web.Response(status=answers.pop(0) if answers else 204)

    app = web.Application()
    app.router.add_post("/status", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/status?key=out-42", received, answers
    finally:
        await runner.cleanup()


async def test_deliver_posts_a_signed_status_callback(fake: FakeTwilio) -> None:
    async with receiver() as (url, received, answers), twilio_client(fake) as (client, _):
        message = await client.messages.create_async(to=CITIZEN, from_=CITY, body="hi", status_callback=url)
        assert await fake.deliver(message.sid) == 204
        answers.append(500)
        assert await fake.deliver(message.sid, "undelivered", error_code=30005) == 500
    validator = RequestValidator(TOKEN)
    (delivered_sig, delivered), (failed_sig, failed) = received
    assert validator.validate(url, delivered, delivered_sig)
    assert validator.validate(url, failed, failed_sig)
    assert not validator.validate(url.replace("out-42", "out-43"), delivered, delivered_sig)
    assert not RequestValidator("0" * 32).validate(url, delivered, delivered_sig)
    assert delivered["MessageSid"] == delivered["SmsSid"] == message.sid
    assert (delivered["MessageStatus"], delivered["From"], delivered["To"]) == ("delivered", CITY, CITIZEN)
    assert delivered["AccountSid"] == fake.account_sid and delivered["ApiVersion"] == "2010-04-01"
    assert "ErrorCode" not in delivered
    assert (failed["MessageStatus"], failed["SmsStatus"], failed["ErrorCode"]) == ("undelivered",) * 2 + (
        "30005",
    )
    assert fake.sent[0].status == "undelivered" and fake.sent[0].sent_at is not None  # now it has a date_sent


async def test_deliver_refuses_a_message_without_status_callback(fake: FakeTwilio) -> None:
    async with twilio_client(fake) as (client, _):
        message = await client.messages.create_async(to=CITIZEN, from_=CITY, body="hi")
    with pytest.raises(ValueError, match="without a StatusCallback"):
        await fake.deliver(message.sid)


def test_inbound_params_carry_what_twilio_sends_and_sign_validates() -> None:
    account, sid = new_sid("AC"), new_sid("MM")
    media = [("https://api.twilio.com/m/ME1", "image/jpeg"), ("https://api.twilio.com/m/ME2", "image/png")]
    params = inbound_params(account, sid=sid, from_=CITIZEN, to=CITY, body="가로등이 꺼졌어요", media=media)
    assert params["MessageSid"] == params["SmsMessageSid"] == params["SmsSid"] == sid
    assert (params["AccountSid"], params["From"], params["To"]) == (account, CITIZEN, CITY)
    assert (params["NumMedia"], params["NumSegments"], params["FromCountry"]) == ("2", "1", "KR")
    assert params["MediaUrl1"] == media[1][0] and params["MediaContentType1"] == "image/png"
    assert params["ApiVersion"] == "2010-04-01" and "MessagingServiceSid" not in params
    url = "https://city.example/webhooks/sms"
    signature = sign(TOKEN, url, params)
    assert RequestValidator(TOKEN).validate(url, params, signature)
    assert not RequestValidator(TOKEN).validate(url, {**params, "Body": "changed"}, signature)
    assert not RequestValidator(TOKEN).validate(url + "?x=1", params, signature)


async def test_webhook_posts_a_signed_form(fake: FakeTwilio) -> None:
    async with receiver() as (url, received, _):
        params = inbound_params(fake.account_sid, sid=new_sid("SM"), from_=CITIZEN, to=CITY, body="STOP")
        assert await fake.webhook(url, params) == 204
        assert await fake.webhook(url, params, signature="forged") == 204
    (good_sig, form), (bad_sig, _) = received
    assert form == params
    assert RequestValidator(TOKEN).validate(url, form, good_sig)
    assert not RequestValidator(TOKEN).validate(url, form, bad_sig)


async def test_webhook_can_connect_through_a_proxy_while_signing_the_public_url(fake: FakeTwilio) -> None:
    async with receiver() as (local, received, _):
        public = "https://city.example/status?key=out-42"
        local_root = local.split("/status")[0]
        params = inbound_params(fake.account_sid, sid=new_sid("SM"), from_=CITIZEN, to=CITY, body="hi")
        assert await fake.webhook(public, params, connect_to=local_root) == 204
    [(signature, form)] = received
    assert RequestValidator(TOKEN).validate(public, form, signature)


# --- the list of messages sent -------------------------------------------------------------------------


async def test_the_message_list_filters_by_to_and_from_and_pages_as_the_sdk_reads_it(
    fake: FakeTwilio,
) -> None:
    async with twilio_client(fake) as (client, http):
        for n in range(5):
            await client.messages.create_async(to=CITIZEN, from_=CITY, body=f"notice {n}")
        await client.messages.create_async(to="+821099998888", from_=CITY, body="someone else")
        await client.messages.create_async(to=CITIZEN, messaging_service_sid=SERVICE, body="a service's")
        listed = [m async for m in await client.messages.stream_async(to=CITIZEN, from_=CITY, page_size=2)]
        last_page = json.loads(http._test_only_last_response.text)
        everything = await client.messages.list_async(to=CITIZEN)
    # Newest first (all still queued), in three pages whose links carry the filters on.
    assert [m.body for m in listed] == [f"notice {n}" for n in (4, 3, 2, 1, 0)]
    assert [query.get("Page") for query in fake.listings[:3]] == [None, "1", "2"]
    assert all(query["To"] == CITIZEN and query["From"] == CITY for query in fake.listings[:3])
    assert last_page["next_page_uri"] is None and (last_page["page"], last_page["start"]) == (2, 4)
    assert all(set(m) == MESSAGE_PROPERTIES for m in last_page["messages"])
    assert len(everything) == 6 and everything[0].body == "a service's"
    assert listed[0].date_created is not None and listed[0].date_sent is None
    assert fake.spec_violations == []


async def test_messages_sent_are_listed_after_those_still_queued(fake: FakeTwilio) -> None:
    async with receiver() as (url, _, _), twilio_client(fake) as (client, _):
        sent = await client.messages.create_async(to=CITIZEN, from_=CITY, body="sent", status_callback=url)
        await client.messages.create_async(to=CITIZEN, from_=CITY, body="still queued")
        assert await fake.deliver(sent.sid, "sent") == 204
        listed = await client.messages.list_async(to=CITIZEN)
    assert [(m.body, m.status, m.date_sent is None) for m in listed] == [
        ("still queued", "queued", True),
        ("sent", "sent", False),
    ]


async def test_a_listing_outside_the_spec_is_a_violation_and_a_filter_the_fake_lacks_refused(
    fake: FakeTwilio,
) -> None:
    url = f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
    headers = {"Authorization": aiohttp.encode_basic_auth(fake.account_sid, TOKEN)}
    async with aiohttp.ClientSession() as session:
        for query in ({"Colour": "red"}, {"PageSize": "0"}, {"Page": "-1"}):
            async with session.get(url, params=query, headers=headers) as response:
                assert response.status == 400 and (await response.json())["code"] == 21600
        # In the spec, but find_sent does not use it: refused rather than ignored.
        async with session.get(url, params={"DateSent": "2026-01-01"}, headers=headers) as response:
            assert response.status == 501
    assert [v.split(": ", 1)[1] for v in fake.spec_violations] == [
        "unknown parameter 'Colour'",
        "PageSize='0' is not an integer in 1..1000",
        "Page='-1' is not an integer in 0..inf",
    ]
