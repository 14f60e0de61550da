"""The SMS adapter against the fake Twilio: webhooks signed exactly as Twilio signs them, sends through
the real twilio SDK, media fetched with the account's credentials. The router's side is a small
recording host; the whole bot is in tests/test_sms_bot.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pydantic
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from channels.base import (
    Attachment,
    Button,
    DeliveryReport,
    InboundMessage,
    OutboundMessage,
    PermanentSendError,
    Receipt,
    TransientSendError,
)
from channels.segments import sms_encoding, sms_segments
from channels.sms import SmsChannel, command_of
from channels.sms_config import SmsConfig
from tests.fakes.twilio import FakeTwilio, inbound_params, new_sid, sign

ACCOUNT = new_sid("AC")
TOKEN = "e" * 32
CITY = "+15005550006"
CITIZEN = "+821012345678"
PUBLIC = "https://city.example"
WEBHOOK = f"{PUBLIC}/webhooks/sms"


@dataclass
class RecordingHost:
    """The router's side of the contract: intake dedupes on the provider's id, as the store does."""

    leading: bool = True  # False: another instance runs the pollers

    messages: list[InboundMessage] = field(default_factory=list)
    reports: list[DeliveryReport] = field(default_factory=list)
    known_keys: set[str] = field(default_factory=set)

    async def intake(self, message: InboundMessage) -> Receipt:
        duplicate = any(m.provider_message_id == message.provider_message_id for m in self.messages)
        if not duplicate:
            self.messages.append(message)
        return Receipt(duplicate=duplicate)

    async def delivery_report(self, report: DeliveryReport) -> bool:
        self.reports.append(report)
        return report.idempotency_key in self.known_keys

    async def recall(self, channel: str, name: str) -> str | None:
        return None

    async def remember(self, channel: str, name: str, value: str) -> None:
        return None

    async def lead(self, job: str) -> bool:
        return self.leading


@dataclass
class Setup:
    channel: SmsChannel
    client: TestClient[Any, Any]
    fake: FakeTwilio
    host: RecordingHost

    async def post(
        self, params: dict[str, str], *, path: str = "/webhooks/sms", signature: str | None = None
    ) -> tuple[int, str]:
        """POST as Twilio does to the public URL, which the test server stands behind."""
        signed = sign(TOKEN, f"{PUBLIC}{path}", params) if signature is None else signature
        response = await self.client.post(
            path,
            data=urlencode(params),
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signed},
        )
        return response.status, await response.text()

    async def deliver(self, sid: str, status: str = "delivered") -> None:
        """Twilio's status callback for `sid`, to the public URL through the test server."""
        assert await self.fake.deliver(sid, status, connect_to=str(self.client.make_url(""))) == 204

    def outbound(self, text: str, key: str = "out-1", **extra: Any) -> OutboundMessage:
        return OutboundMessage(channel="sms", recipient=CITIZEN, text=text, idempotency_key=key, **extra)


HI = OutboundMessage(channel="sms", recipient=CITIZEN, text="hi", idempotency_key="k")


def sms_config(fake: FakeTwilio, **changes: Any) -> SmsConfig:
    values: dict[str, Any] = {
        "enabled": True,
        "account_sid": fake.account_sid,
        "auth_token": fake.auth_token,
        "from_number": CITY,
        "api_base_url": fake.base_url,
        "timeout_seconds": 0.5,
    }
    return SmsConfig(**(values | changes))


@pytest.fixture
async def sms() -> AsyncIterator[Setup]:
    async with FakeTwilio(ACCOUNT, TOKEN) as fake:
        channel = SmsChannel(sms_config(fake), public_url=PUBLIC)
        app = web.Application()
        app.add_routes(channel.routes())
        host = RecordingHost()
        async with TestClient(TestServer(app)) as client:
            await channel.start(host)
            try:
                yield Setup(channel, client, fake, host)
            finally:
                await channel.stop()
                await channel.stop()  # twice is allowed
        assert fake.spec_violations == []


def inbound(body: str, *, sid: str | None = None, **kwargs: Any) -> dict[str, str]:
    return inbound_params(ACCOUNT, sid=sid or new_sid("SM"), from_=CITIZEN, to=CITY, body=body, **kwargs)


# --- inbound ---------------------------------------------------------------------------------------


async def test_a_signed_message_is_handed_over_and_answered_with_empty_twiml(sms: Setup) -> None:
    params = inbound("가로등이 고장났어요", messaging_service_sid="MG" + "b" * 32)
    params["SomethingNewFromTwilio"] = "42"  # Twilio adds fields without notice; they are signed too
    status, text = await sms.post(params)
    assert status == 200 and re.fullmatch(r"<\?xml[^>]*\?>\s*<Response\s*/>", text)
    [message] = sms.host.messages
    assert (message.channel, message.sender, message.text) == ("sms", CITIZEN, "가로등이 고장났어요")
    assert message.provider_message_id == params["MessageSid"] and message.command is None
    assert message.raw is not None and message.raw["SomethingNewFromTwilio"] == "42"
    assert message.attachments == ()


async def test_the_answer_is_text_xml(sms: Setup) -> None:
    response = await sms.client.post(
        "/webhooks/sms",
        data=urlencode(params := inbound("hi")),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign(TOKEN, WEBHOOK, params),
        },
    )
    assert response.status == 200 and response.content_type == "text/xml"


async def test_a_webhook_url_with_a_query_is_signed_with_it(sms: Setup) -> None:
    params = inbound("hello")
    signature = sign(TOKEN, f"{WEBHOOK}?city=seoul", params)
    assert (await sms.post(params, path="/webhooks/sms?city=seoul", signature=signature))[0] == 200
    assert (await sms.post(params, path="/webhooks/sms?city=busan", signature=signature))[0] == 403


@pytest.mark.parametrize(
    "forge",
    [
        lambda p: ("", p),  # no signature
        lambda p: (sign("0" * 32, WEBHOOK, p), p),  # another token
        lambda p: (sign(TOKEN, WEBHOOK, p), {**p, "Body": "changed"}),  # tampered body
        lambda p: (sign(TOKEN, "http://127.0.0.1/webhooks/sms", p), p),  # the URL as aiohttp sees it
    ],
)
async def test_a_forged_request_is_refused_and_nothing_is_handed_over(sms: Setup, forge: Any) -> None:
    signature, params = forge(inbound("hello"))
    assert (await sms.post(params, signature=signature))[0] == 403
    assert sms.host.messages == []


async def test_a_replayed_message_is_handed_over_once(sms: Setup) -> None:
    params = inbound("hello", sid=new_sid("SM"))
    assert (await sms.post(params))[0] == 200
    assert (await sms.post(params))[0] == 200  # Twilio's retry: acknowledged again, stored once
    assert len(sms.host.messages) == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"From": ""}, "missing From"),
        ({"MessageSid": ""}, "missing MessageSid"),
        ({"NumMedia": "2", "MediaUrl0": "https://api.twilio.com/m/ME1"}, "MediaUrl1 is missing"),
        ({"NumMedia": "many"}, "NumMedia"),
        ({"AccountSid": new_sid("AC")}, "another Twilio account"),
    ],
)
async def test_a_signed_but_malformed_form_gets_400(sms: Setup, change: dict[str, str], reason: str) -> None:
    params = {key: value for key, value in {**inbound("hello"), **change}.items() if value}
    status, text = await sms.post(params)
    assert status == 400 and reason in text
    assert sms.host.messages == []


async def test_a_body_that_is_not_a_form_is_refused(sms: Setup) -> None:
    response = await sms.client.post(
        "/webhooks/sms", json={"Body": "hi"}, headers={"X-Twilio-Signature": sign(TOKEN, WEBHOOK, {})}
    )
    assert response.status == 403 and sms.host.messages == []


async def test_an_oversized_body_gets_413(sms: Setup) -> None:
    params = inbound("가" * 10_000)  # ~90 kB form-encoded, well over any real Twilio webhook
    assert (await sms.post(params))[0] == 413
    assert sms.host.messages == []


async def test_mms_photos_become_attachments(sms: Setup) -> None:
    media = [("https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME1", "image/jpeg")]
    assert (await sms.post(inbound("", sid=new_sid("MM"), media=media)))[0] == 200
    [message] = sms.host.messages
    assert message.text == "" and [(a.url, a.content_type) for a in message.attachments] == media


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("STOP", "stop"),
        (" stop \n", "stop"),
        ("Unsubscribe", "stop"),
        ("optout", "stop"),
        ("수신거부", "stop"),
        ("수신  거부", "stop"),
        ("START", "unstop"),
        ("yes", "unstop"),
        ("Unstop", "unstop"),
        ("HELP", "help"),
        ("info ", "help"),
        ("stop the noise please", None),
        ("도로에 구멍이 났어요", None),
    ],
)
async def test_keywords_become_commands(sms: Setup, text: str, command: str | None) -> None:
    assert (await sms.post(inbound(text)))[0] == 200
    assert sms.host.messages[0].command == command


def test_extra_stop_words_come_from_config() -> None:
    assert command_of("그만", ["그만"]) == "stop"
    assert command_of("그만") is None


# --- delivery reports ------------------------------------------------------------------------------


async def test_status_callbacks_reach_the_host_with_our_key(sms: Setup) -> None:
    # Twilio calls the URL the send gave it: point the channel's public URL at the test server.
    sms.channel.public_url = str(sms.client.make_url("")).rstrip("/")
    sms.channel.status_callbacks = True
    sms.host.known_keys.add("notice:7:forwarded")
    result = await sms.channel.send(sms.outbound("Ticket 2026-000007: sent", key="notice:7:forwarded"))
    assert await sms.fake.deliver(result.provider_message_id or "", "sent") == 204
    assert await sms.fake.deliver(result.provider_message_id or "", "undelivered", error_code=30005) == 204
    sent, undelivered = sms.host.reports
    assert (sent.status, sent.idempotency_key, sent.provider_message_id) == (
        "sent",
        "notice:7:forwarded",
        result.provider_message_id,
    )
    assert undelivered.failed and undelivered.error == "30005" and undelivered.channel == "sms"


async def test_an_unmatched_status_callback_is_still_acknowledged(sms: Setup) -> None:
    params = {"MessageSid": new_sid("SM"), "MessageStatus": "delivered", "AccountSid": ACCOUNT}
    assert (await sms.post(params, path="/webhooks/sms/status?key=unknown"))[0] == 204
    assert [r.idempotency_key for r in sms.host.reports] == ["unknown"]


async def test_a_forged_or_malformed_status_callback_is_refused(sms: Setup) -> None:
    params = {"MessageSid": new_sid("SM"), "MessageStatus": "failed", "AccountSid": ACCOUNT}
    forged = sign(TOKEN, f"{PUBLIC}/webhooks/sms/status?key=other", params)
    assert (await sms.post(params, path="/webhooks/sms/status?key=k", signature=forged))[0] == 403
    incomplete = {"MessageSid": params["MessageSid"]}
    assert (await sms.post(incomplete, path="/webhooks/sms/status?key=k"))[0] == 400
    assert sms.host.reports == []


async def test_only_the_last_part_or_a_failure_of_a_split_text_is_reported(sms: Setup) -> None:
    path = "/webhooks/sms/status?key=k&part={}&parts=3"
    for part, status in ((1, "delivered"), (2, "undelivered"), (3, "delivered")):
        params = {"MessageSid": new_sid("SM"), "MessageStatus": status, "AccountSid": ACCOUNT}
        assert (await sms.post(params, path=path.format(part)))[0] == 204
    assert [r.status for r in sms.host.reports] == ["undelivered", "delivered"]


# --- sending ---------------------------------------------------------------------------------------


async def test_a_send_goes_through_the_sdk_with_the_configured_sender(sms: Setup) -> None:
    result = await sms.channel.send(sms.outbound("Your ticket 2026-000001 is received."))
    [sent] = sms.fake.sent
    assert (sent.to, sent.from_, sent.body) == (CITIZEN, CITY, "Your ticket 2026-000001 is received.")
    assert result.provider_message_id == sent.sid
    assert sent.status_callback == f"{PUBLIC}/webhooks/sms/status?key=out-1"  # https public URL: asked


async def test_a_messaging_service_sends_without_from_and_http_gets_no_callback() -> None:
    async with FakeTwilio(ACCOUNT, TOKEN) as fake:
        config = sms_config(fake, from_number="", messaging_service_sid="MG" + "c" * 32)
        channel = SmsChannel(config, public_url="http://localhost:8080")
        await channel.start(RecordingHost())
        try:
            await channel.send(HI)
        finally:
            await channel.stop()
        [sent] = fake.sent
        assert (sent.from_, sent.messaging_service_sid, sent.status_callback) == (None, "MG" + "c" * 32, None)
        assert fake.spec_violations == []


async def test_buttons_become_a_plain_text_line(sms: Setup) -> None:
    buttons = (Button("Very good", "5"), Button("Bad", "1"))
    await sms.channel.send(sms.outbound("How did we do?", buttons=buttons))
    assert sms.fake.sent[0].body == "How did we do?\n5: Very good  1: Bad"


async def test_media_urls_go_with_the_first_part_only(sms: Setup) -> None:
    photo = Attachment(url="https://city.example/media/map.png", content_type="image/png")
    await sms.channel.send(sms.outbound("Here is the map.", attachments=(photo,)))
    assert sms.fake.sent[0].media_urls == ["https://city.example/media/map.png"]


@pytest.mark.parametrize(
    ("arrange", "expected"),
    [
        (lambda f: f.opted_out.add(CITIZEN), "opted out"),
        (lambda f: f.landlines.add(CITIZEN), "can receive SMS"),
    ],
)
async def test_refusals_are_permanent(sms: Setup, arrange: Any, expected: str) -> None:
    arrange(sms.fake)
    with pytest.raises(PermanentSendError, match=expected):
        await sms.channel.send(sms.outbound("hi"))
    assert sms.fake.sent == []


async def test_an_invalid_number_is_permanent(sms: Setup) -> None:
    message = OutboundMessage(channel="sms", recipient="01012345678", text="hi", idempotency_key="k")
    with pytest.raises(PermanentSendError, match="21211"):
        await sms.channel.send(message)


async def test_a_500_and_an_outage_are_transient(sms: Setup) -> None:
    sms.fake.fail_next(1, status=500)
    with pytest.raises(TransientSendError, match="500"):
        await sms.channel.send(sms.outbound("hi"))
    sms.fake.down = True
    with pytest.raises(TransientSendError, match="503"):
        await sms.channel.send(sms.outbound("hi"))
    sms.fake.down = False
    await sms.channel.send(sms.outbound("hi"))
    assert len(sms.fake.sent) == 1


async def test_a_429_is_transient_with_retry_after(sms: Setup) -> None:
    sms.fake.retry_after = 9
    sms.fake.fail_next(1, status=429)
    with pytest.raises(TransientSendError) as raised:
        await sms.channel.send(sms.outbound("hi"))
    assert raised.value.retry_after == 9


async def test_a_hanging_twilio_times_out_as_transient(sms: Setup) -> None:
    sms.fake.hang = True
    with pytest.raises(TransientSendError, match="did not answer"):
        await sms.channel.send(sms.outbound("hi"))
    sms.fake.hang = False
    await sms.channel.send(sms.outbound("hi"))
    assert len(sms.fake.sent) == 1


async def test_refused_credentials_and_no_connection_are_transient() -> None:
    async with FakeTwilio(ACCOUNT, TOKEN) as fake:
        wrong = SmsChannel(sms_config(fake, auth_token="0" * 32), public_url=PUBLIC)
        await wrong.start(RecordingHost())
        with pytest.raises(TransientSendError, match="401"):
            await wrong.send(HI)
        await wrong.stop()
        closed_port = fake.base_url
    unreachable = SmsChannel(sms_config(fake, api_base_url=closed_port), public_url=PUBLIC)
    await unreachable.start(RecordingHost())
    with pytest.raises(TransientSendError, match="could not be reached"):
        await unreachable.send(HI)
    await unreachable.stop()


async def test_a_send_before_start_is_transient() -> None:
    channel = SmsChannel(SmsConfig(), public_url=PUBLIC)
    with pytest.raises(TransientSendError, match="not running"):
        await channel.send(HI)


# --- long texts ------------------------------------------------------------------------------------

KOREAN_SENTENCE = "가" * 65 + "."  # 66 UCS-2 units; with the space after it, one split segment (67)
ENGLISH_PARAGRAPH = " ".join(["The street light on Main Street is out again."] * 4)  # 183 GSM-7 septets


async def test_a_long_korean_text_is_split_at_sentences_within_the_segment_limit(sms: Setup) -> None:
    text = " ".join([KOREAN_SENTENCE] * 25)  # 25 sentences: 1,674 units, 25 segments in all
    message = sms.outbound(text)
    assert sms_segments(text) == 25 and sms.channel.send_cost(message) == 25
    await sms.channel.send(message)
    bodies = [s.body for s in sms.fake.sent]
    # Ten sentences (669 units) fill ten segments exactly; the rest goes on in the next messages.
    assert [b.count(".") for b in bodies] == [10, 10, 5]
    assert [s.num_segments for s in sms.fake.sent] == [10, 10, 5]
    assert all(b.endswith(".") and sms_encoding(b) == "UCS-2" for b in bodies)
    assert " ".join(bodies) == text
    assert sum(s.num_segments for s in sms.fake.sent) == sms.channel.send_cost(message)


async def test_a_long_english_text_is_split_at_paragraphs(sms: Setup) -> None:
    sms.channel.config = sms.channel.config.model_copy(update={"max_segments": 2})
    text = "\n\n".join([ENGLISH_PARAGRAPH] * 3)
    message = sms.outbound(text)
    assert sms.channel.send_cost(message) == 6
    await sms.channel.send(message)
    assert [s.body for s in sms.fake.sent] == [ENGLISH_PARAGRAPH] * 3
    assert [s.num_segments for s in sms.fake.sent] == [2, 2, 2]


async def test_a_retry_after_a_failed_part_sends_only_the_rest(sms: Setup) -> None:
    message = sms.outbound(" ".join([KOREAN_SENTENCE] * 25), key="long-1")
    sms.fake.fail_next(1, status=503, after=1)  # part 1 goes, part 2 meets an outage
    with pytest.raises(TransientSendError):
        await sms.channel.send(message)
    assert len(sms.fake.sent) == 1
    result = await sms.channel.send(message)  # the dispatcher's retry
    assert [s.body.count(".") for s in sms.fake.sent] == [10, 10, 5]  # each part exactly once
    assert (sms.fake.attempts, sms.fake.failed_attempts) == (4, 1)
    assert result.provider_message_id == sms.fake.sent[0].sid
    sms.channel.on_sent(message)  # recorded as sent: nothing more to remember for it
    await sms.channel.send(message)
    assert len(sms.fake.sent) == 6


# --- after a crash: did it reach Twilio? -------------------------------------------------------------


@asynccontextmanager
async def restarted(sms: Setup, **changes: Any) -> AsyncIterator[SmsChannel]:
    """The channel of a new process (nothing in memory) against the same Twilio."""
    channel = SmsChannel(sms_config(sms.fake, **changes), public_url=PUBLIC)
    await channel.start(RecordingHost())
    try:
        yield channel
    finally:
        await channel.stop()


async def test_a_send_that_reached_twilio_is_found_after_a_restart(sms: Setup) -> None:
    assert SmsChannel.can_find_sent
    since = datetime.now(UTC)
    message = sms.outbound("Your ticket 2026-000001 is received.")
    await sms.channel.send(message)  # ... and the process died before recording it
    async with restarted(sms) as channel:
        found = await channel.find_sent(message, since=since)
        assert found is not None and found.provider_message_id == sms.fake.sent[0].sid
        await sms.deliver(sms.fake.sent[0].sid)  # sent by now: it has a date_sent
        assert await channel.find_sent(message, since=since.replace(tzinfo=None)) == found  # naive is UTC
    # Listed by recipient and sender; no DateSent filter, which could leave out a queued message.
    assert [dict(query) for query in sms.fake.listings] == [
        {"To": CITIZEN, "From": CITY, "PageSize": "100"}
    ] * 2


async def test_what_did_not_reach_twilio_is_not_found(sms: Setup) -> None:
    since = datetime.now(UTC)
    message = sms.outbound("Your ticket 2026-000001 is received.")
    async with restarted(sms) as channel:
        assert await channel.find_sent(message, since=since) is None
        await sms.channel.send(sms.outbound("Your ticket 2026-000002 is received.", key="other"))
        assert await channel.find_sent(message, since=since) is None  # another text to the same number
        await sms.channel.send(replace(message, recipient="+821099998888"))
        assert await channel.find_sent(message, since=since) is None  # the same text to another number


async def test_a_message_created_before_the_attempt_is_not_taken_for_it(sms: Setup) -> None:
    message = sms.outbound("Thank you. Your rating is recorded.")
    await sms.channel.send(message)  # an earlier row with the same text, long done
    sms.fake.sent[0].created -= timedelta(minutes=5)
    async with restarted(sms) as channel:
        assert await channel.find_sent(message, since=datetime.now(UTC)) is None


async def test_a_split_text_is_found_part_by_part(sms: Setup) -> None:
    since = datetime.now(UTC)
    message = sms.outbound(" ".join([KOREAN_SENTENCE] * 25), key="long-1")  # three messages
    await sms.channel.send(message)
    async with restarted(sms) as channel:
        found = await channel.find_sent(message, since=since)
    assert found is not None and found.provider_message_id == sms.fake.sent[0].sid


async def test_a_split_text_cut_short_by_the_crash_sends_only_the_rest(sms: Setup) -> None:
    since = datetime.now(UTC)
    message = sms.outbound(" ".join([KOREAN_SENTENCE] * 25), key="long-1")
    sms.fake.fail_next(1, status=503, after=1)  # the first part went, then the process died
    with pytest.raises(TransientSendError):
        await sms.channel.send(message)
    async with restarted(sms) as channel:
        assert await channel.find_sent(message, since=since) is None  # not all of it
        result = await channel.send(message)
    assert [s.body.count(".") for s in sms.fake.sent] == [10, 10, 5]  # each part exactly once
    assert result.provider_message_id == sms.fake.sent[0].sid


async def test_a_messaging_service_send_is_found_without_a_from_filter() -> None:
    service = "MG" + "c" * 32
    async with FakeTwilio(ACCOUNT, TOKEN) as fake:
        config = sms_config(fake, from_number="", messaging_service_sid=service)
        first, second = (SmsChannel(config, public_url=PUBLIC) for _ in range(2))
        await first.start(RecordingHost())
        await second.start(RecordingHost())
        try:
            since = datetime.now(UTC)
            await first.send(HI)
            found = await second.find_sent(HI, since=since)
            assert found is not None and found.provider_message_id == fake.sent[0].sid
        finally:
            await first.stop()
            await second.stop()
        assert [dict(query) for query in fake.listings] == [{"To": CITIZEN, "PageSize": "100"}]
        assert fake.spec_violations == []


async def test_the_recipients_messages_are_read_page_by_page(sms: Setup) -> None:
    since = datetime.now(UTC)
    message = sms.outbound("Your ticket 2026-000001 is received.")
    await sms.channel.send(message)
    await sms.deliver(sms.fake.sent[0].sid)  # sent, so listed after those still queued
    for n in range(150):
        await sms.channel.send(sms.outbound(f"Notice {n}", key=f"n{n}"))
    async with restarted(sms) as channel:
        found = await channel.find_sent(message, since=since)
    assert found is not None and found.provider_message_id == sms.fake.sent[0].sid
    assert [dict(query).get("Page") for query in sms.fake.listings] == [None, "1"]


async def test_twilio_unable_to_answer_is_transient(sms: Setup) -> None:
    since = datetime.now(UTC)
    sms.fake.down = True
    with pytest.raises(TransientSendError, match="503"):
        await sms.channel.find_sent(HI, since=since)
    sms.fake.down, sms.fake.hang = False, True
    with pytest.raises(TransientSendError, match="did not answer"):
        await sms.channel.find_sent(HI, since=since)
    sms.fake.hang = False
    async with restarted(sms, auth_token="0" * 32) as wrong:
        with pytest.raises(TransientSendError, match="401"):
            await wrong.find_sent(HI, since=since)
    with pytest.raises(TransientSendError, match="not running"):
        await SmsChannel(SmsConfig(), public_url=PUBLIC).find_sent(HI, since=since)


# --- media -----------------------------------------------------------------------------------------


async def test_media_is_fetched_with_the_account_credentials_through_the_redirect(sms: Setup) -> None:
    url = sms.fake.add_media(new_sid("MM"), b"\xff\xd8 jpeg bytes", "image/jpeg")
    fetched = await sms.channel.fetch_media(Attachment(url=url, content_type="image/jpeg"))
    assert (fetched.data, fetched.content_type) == (b"\xff\xd8 jpeg bytes", "image/jpeg")
    assert sms.fake.media_requests == 1
    sms.fake.expire_media(url)
    with pytest.raises(PermanentSendError, match="gone"):
        await sms.channel.fetch_media(Attachment(url=url))


async def test_media_over_the_limit_is_refused(sms: Setup) -> None:
    sms.channel.config = sms.channel.config.model_copy(update={"max_media_bytes": 1000})
    url = sms.fake.add_media(new_sid("MM"), b"x" * 1001, "image/png")
    with pytest.raises(PermanentSendError, match="over 1000"):
        await sms.channel.fetch_media(Attachment(url=url))


async def test_media_during_an_outage_is_transient(sms: Setup) -> None:
    url = sms.fake.add_media(new_sid("MM"), b"photo", "image/png")
    sms.fake.down = True
    with pytest.raises(TransientSendError, match="503"):
        await sms.channel.fetch_media(Attachment(url=url))
    sms.fake.down, sms.fake.hang = False, True
    with pytest.raises(TransientSendError, match="Timeout"):
        await sms.channel.fetch_media(Attachment(url=url))


async def test_credentials_never_go_to_another_host(sms: Setup) -> None:
    # The storage host refuses any Authorization header, as S3 does: a leak would fail here.
    url = sms.fake.add_media(new_sid("MM"), b"photo", "image/png")
    async with sms.client.session.get(url, headers={"Authorization": "x"}, allow_redirects=False) as first:
        assert first.status == 401
    storage = f"{sms.fake.storage_url}/media/{sms.fake._media[url.rsplit('/', 1)[1]].token}"
    fetched = await sms.channel.fetch_media(Attachment(url=storage))
    assert fetched.data == b"photo"


# --- config ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"auth_token": ""}, "needs account_sid and auth_token"),
        ({"messaging_service_sid": "MG" + "d" * 32}, "exactly one"),
        ({"account_sid": "AC123"}, "32 hex digits"),
        ({"from_number": "010-1234-5678"}, "E.164"),
        ({"from_number": "", "messaging_service_sid": "MS123"}, "MG followed by"),
        ({"max_segments": 11}, "less than or equal to 10"),
    ],
)
def test_config_fails_fast(changes: dict[str, Any], reason: str) -> None:
    values = {"enabled": True, "account_sid": ACCOUNT, "auth_token": TOKEN, "from_number": CITY} | changes
    with pytest.raises(pydantic.ValidationError, match=reason):
        SmsConfig(**values)
    assert SmsConfig().enabled is False  # disabled needs nothing
