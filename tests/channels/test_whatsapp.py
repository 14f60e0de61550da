"""The WhatsApp adapter against the fake Twilio for WhatsApp (tests/fakes/whatsapp.py): webhooks signed
exactly as Twilio signs them, sends through the real twilio SDK, the 24-hour window on a clock the
test moves. The router's side is a small recording host with a working memory; the whole bot is in
tests/bot/test_whatsapp_bot.py."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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
from channels.settings import RateLimitConfig
from channels.whatsapp import MAX_VARIABLE, WhatsappChannel
from channels.whatsapp_config import ContentTemplate, WhatsappConfig
from tests.fakes.twilio import new_sid, sign
from tests.fakes.whatsapp import FakeWhatsapp, whatsapp_params

ACCOUNT = new_sid("AC")
TOKEN = "f" * 32
CITY = "whatsapp:+15005550006"
CITIZEN = "whatsapp:+821012345678"
PUBLIC = "https://city.example"
WEBHOOK = f"{PUBLIC}/webhooks/whatsapp"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class RecordingHost:
    """The router's side: intake dedupes on the provider's id, as the store does; a real memory."""

    messages: list[InboundMessage] = field(default_factory=list)
    reports: list[DeliveryReport] = field(default_factory=list)
    memory: dict[tuple[str, str], str] = field(default_factory=dict)

    async def intake(self, message: InboundMessage) -> Receipt:
        duplicate = any(m.provider_message_id == message.provider_message_id for m in self.messages)
        if not duplicate:
            self.messages.append(message)
        return Receipt(duplicate=duplicate)

    async def delivery_report(self, report: DeliveryReport) -> bool:
        self.reports.append(report)
        return True

    async def recall(self, channel: str, name: str) -> str | None:
        return self.memory.get((channel, name))

    async def remember(self, channel: str, name: str, value: str) -> None:
        self.memory[(channel, name)] = value

    async def lead(self, job: str) -> bool:
        return True


@dataclass
class Setup:
    channel: WhatsappChannel
    client: TestClient[Any, Any]
    fake: FakeWhatsapp
    host: RecordingHost
    clock: Clock
    resolved: str  # the approved template of the "resolved" notice

    async def post(
        self, params: dict[str, str], *, path: str = "/webhooks/whatsapp", signature: str | None = None
    ) -> tuple[int, str]:
        """POST as Twilio does to the public URL, which the test server stands behind."""
        signed = sign(TOKEN, f"{PUBLIC}{path}", params) if signature is None else signature
        response = await self.client.post(
            path,
            data=urlencode(params),
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signed},
        )
        return response.status, await response.text()

    async def citizen_writes(self, body: str = "안녕하세요", **kwargs: Any) -> dict[str, str]:
        """The citizen writes now: WhatsApp (the fake) and the adapter both see it."""
        params = inbound(body, **kwargs)
        self.fake.last_inbound[CITIZEN] = self.clock()
        assert (await self.post(params))[0] == 200
        return params

    def notice(
        self, notice: str | None, text: str = "Ticket 2026-000007 is resolved.", **extra: Any
    ) -> OutboundMessage:
        variables = {"reference": "2026-000007", "department": "Transport", "text": "Lamp replaced."}
        return OutboundMessage(
            channel="whatsapp",
            recipient=CITIZEN,
            text=text,
            idempotency_key=f"out-{new_sid('K')}",
            notice=notice,
            variables=variables if notice else None,
            **extra,
        )


def whatsapp_config(fake: FakeWhatsapp, **changes: Any) -> WhatsappConfig:
    values: dict[str, Any] = {
        "enabled": True,
        "account_sid": fake.account_sid,
        "auth_token": fake.auth_token,
        "from_number": CITY,
        "api_base_url": fake.base_url,
        "timeout_seconds": 0.5,
    }
    return WhatsappConfig(**(values | changes))


@pytest.fixture
async def wa() -> AsyncIterator[Setup]:
    clock = Clock()
    async with FakeWhatsapp(ACCOUNT, TOKEN, clock=clock) as fake:
        resolved = fake.approve("Ticket {{1}} is resolved: {{2}} Reply 1-5 to rate us.")
        templates = {"resolved": ContentTemplate(sid=resolved, variables=["reference", "text"])}
        channel = WhatsappChannel(
            whatsapp_config(fake, content_templates=templates), public_url=PUBLIC, clock=clock
        )
        app = web.Application()
        app.add_routes(channel.routes())
        host = RecordingHost()
        async with TestClient(TestServer(app)) as client:
            await channel.start(host)
            try:
                yield Setup(channel, client, fake, host, clock, resolved)
            finally:
                await channel.stop()
        assert fake.spec_violations == []


def inbound(body: str, *, sid: str | None = None, **kwargs: Any) -> dict[str, str]:
    return whatsapp_params(ACCOUNT, sid=sid or new_sid("SM"), from_=CITIZEN, to=CITY, body=body, **kwargs)


# --- inbound ---------------------------------------------------------------------------------------


async def test_a_signed_message_is_handed_over_from_the_whatsapp_address(wa: Setup) -> None:
    params = inbound("가로등이 고장났어요", profile_name="Kim Minji")
    status, text = await wa.post(params)
    assert status == 200 and re.fullmatch(r"<\?xml[^>]*\?>\s*<Response\s*/>", text)
    [message] = wa.host.messages
    assert (message.channel, message.sender, message.text) == ("whatsapp", CITIZEN, "가로등이 고장났어요")
    assert (message.sender_name, message.provider_message_id) == ("Kim Minji", params["MessageSid"])
    assert message.raw is not None and message.raw["WaId"] == "821012345678"


@pytest.mark.parametrize(
    "forge",
    [
        lambda p: ("", p),  # no signature
        lambda p: (sign("0" * 32, WEBHOOK, p), p),  # another token
        lambda p: (sign(TOKEN, WEBHOOK, p), {**p, "Body": "changed"}),  # tampered body
        lambda p: (sign(TOKEN, f"{PUBLIC}/webhooks/sms", p), p),  # signed for the SMS door
    ],
)
async def test_a_forged_request_is_refused_and_nothing_is_handed_over(wa: Setup, forge: Any) -> None:
    signature, params = forge(inbound("hello"))
    assert (await wa.post(params, signature=signature))[0] == 403
    assert wa.host.messages == [] and wa.host.memory == {}


async def test_a_retry_is_handed_over_once_and_does_not_move_the_window(wa: Setup) -> None:
    params = await wa.citizen_writes("hello")
    [(key, first)] = wa.host.memory.items()
    wa.clock.now += timedelta(hours=2)
    assert (await wa.post(params))[0] == 200  # Twilio's retry, two hours on
    assert len(wa.host.messages) == 1 and wa.host.memory[key] == first
    assert datetime.fromisoformat(first) == wa.clock.now - timedelta(hours=2)


async def test_the_memory_holds_no_phone_number(wa: Setup) -> None:
    await wa.citizen_writes()
    [(channel, name)] = wa.host.memory
    assert channel == "whatsapp" and name.startswith("citizen:wrote:") and "821012345678" not in name


async def test_photos_become_attachments_fetched_with_the_account_credentials(wa: Setup) -> None:
    sid = new_sid("MM")
    url = wa.fake.add_media(sid, b"\xff\xd8 a pothole", "image/jpeg")
    assert (await wa.post(inbound("", sid=sid, media=[(url, "image/jpeg")])))[0] == 200
    [message] = wa.host.messages
    [photo] = message.attachments
    assert (photo.url, photo.content_type) == (url, "image/jpeg")
    fetched = await wa.channel.fetch_media(photo)
    assert (fetched.data, fetched.content_type) == (b"\xff\xd8 a pothole", "image/jpeg")


async def test_a_shared_location_is_a_location(wa: Setup) -> None:
    assert (await wa.post(inbound("", location=(37.5665, 126.978, "Seoul City Hall"))))[0] == 200
    [message] = wa.host.messages
    assert message.location is not None
    assert (message.location.latitude, message.location.longitude, message.location.label) == (
        37.5665,
        126.978,
        "Seoul City Hall",
    )


@pytest.mark.parametrize(
    ("text", "command"),
    [("STOP", "stop"), ("수신거부", "stop"), ("start", "unstop"), ("HELP", "help"), ("stop it now", None)],
)
async def test_twilios_keywords_become_commands(wa: Setup, text: str, command: str | None) -> None:
    assert (await wa.post(inbound(text)))[0] == 200
    assert wa.host.messages[0].command == command


# --- the 24-hour window ----------------------------------------------------------------------------


async def test_within_the_window_a_reply_goes_as_free_text(wa: Setup) -> None:
    await wa.citizen_writes()
    wa.clock.now += timedelta(hours=23)
    result = await wa.channel.send(wa.notice("staff_reply", "[2026-000007] Transport: tomorrow morning"))
    [sent] = wa.fake.to(CITIZEN)
    assert (sent.from_, sent.body, sent.content_sid) == (
        CITY,
        "[2026-000007] Transport: tomorrow morning",
        None,
    )
    assert result.provider_message_id == sent.sid and result.route == "text"
    assert sent.status_callback is not None
    assert sent.status_callback.startswith(f"{PUBLIC}/webhooks/whatsapp/status?key=out-")


async def test_outside_the_window_a_notice_goes_as_its_template(wa: Setup) -> None:
    await wa.citizen_writes()
    wa.clock.now += timedelta(hours=23, minutes=55)  # within 24 h, but not within the margin
    result = await wa.channel.send(wa.notice("resolved", buttons=(Button("5", "5"),)))
    [sent] = wa.fake.to(CITIZEN)
    assert (sent.content_sid, sent.content_variables) == (
        wa.resolved,
        {"1": "2026-000007", "2": "Lamp replaced."},
    )
    assert sent.body == "Ticket 2026-000007 is resolved: Lamp replaced. Reply 1-5 to rate us."
    assert result.route == "template"  # counted apart: Meta charges for templates
    assert result.provider_message_id == sent.sid and sent.media_urls == []


async def test_a_citizen_never_heard_from_gets_the_template(wa: Setup) -> None:
    await wa.channel.send(wa.notice("resolved"))
    [sent] = wa.fake.to(CITIZEN)
    assert sent.content_sid == wa.resolved


async def test_outside_the_window_a_notice_without_template_fails_with_the_reason(wa: Setup) -> None:
    wa.clock.now += timedelta(days=3)
    with pytest.raises(PermanentSendError) as refused:
        await wa.channel.send(wa.notice("staff_reply"))
    assert str(refused.value) == (
        "outside WhatsApp's 24-hour window, and notice 'staff_reply' has no approved template "
        "(channels.whatsapp.content_templates)"
    )
    with pytest.raises(PermanentSendError, match="a reply that is no notice has no approved template"):
        await wa.channel.send(wa.notice(None))
    assert wa.fake.attempts == 0  # Twilio was not even asked


async def test_when_twilio_says_63016_the_template_goes_once(wa: Setup) -> None:
    await wa.citizen_writes()
    wa.fake.last_inbound[CITIZEN] -= timedelta(hours=25)  # Twilio's clock and ours differ
    await wa.channel.send(wa.notice("resolved"))
    free, template = wa.fake.of("CreateMessage")
    assert (free.status, template.status) == (400, 201)
    assert [s.content_sid for s in wa.fake.to(CITIZEN)] == [wa.resolved]
    await wa.channel.send(wa.notice("resolved"))  # believed until the citizen writes again
    assert wa.fake.attempts == 3 and [s.content_sid for s in wa.fake.to(CITIZEN)] == [wa.resolved] * 2
    await wa.citizen_writes("thanks")
    await wa.channel.send(wa.notice("rated", "Thank you for rating us."))
    assert wa.fake.to(CITIZEN)[-1].body == "Thank you for rating us."


async def test_when_twilio_says_63016_and_there_is_no_template_the_reason_says_so(wa: Setup) -> None:
    await wa.citizen_writes()
    wa.fake.last_inbound.clear()
    with pytest.raises(PermanentSendError, match=r"63016.*notice 'claimed' has no approved template"):
        await wa.channel.send(wa.notice("claimed"))


async def test_another_instance_knows_the_window_from_the_store(wa: Setup) -> None:
    await wa.citizen_writes()
    other = WhatsappChannel(wa.channel.config, public_url=PUBLIC, clock=wa.clock)
    await other.start(wa.host)
    try:
        assert await other.in_window(CITIZEN)
        await other.send(wa.notice("staff_reply", "[2026-000007] Transport: on our way"))
    finally:
        await other.stop()
    assert wa.fake.to(CITIZEN)[0].body == "[2026-000007] Transport: on our way"


def test_template_variables_are_what_whatsapp_takes() -> None:
    from channels.whatsapp import content_variables

    template = ContentTemplate(sid="HX" + "a" * 32, variables=["reference", "text", "due"])
    values = {"reference": "2026-000007", "text": "line one\n\nline   two\t" + "x" * 400}
    variables = json.loads(content_variables(template, values))
    assert list(variables) == ["1", "2", "3"] and variables["3"] == "-"  # empty is refused by WhatsApp
    assert variables["2"].startswith("line one line two x") and len(variables["2"]) == MAX_VARIABLE
    assert variables["2"].endswith("…")


# --- sending ---------------------------------------------------------------------------------------


async def test_a_long_text_is_split_at_twilios_body_limit(wa: Setup) -> None:
    await wa.citizen_writes()
    text = "\n\n".join(f"Paragraph {n}: " + "word " * 150 for n in range(4))  # about 3,100 characters
    message = wa.notice("staff_reply", text)
    assert wa.channel.send_cost(message) == 1
    await wa.channel.send(message)
    bodies = [s.body for s in wa.fake.to(CITIZEN)]
    assert len(bodies) == 2 and all(len(b) <= 1600 for b in bodies)
    assert bodies[0].startswith("Paragraph 0") and bodies[1].startswith("Paragraph 2")


async def test_media_goes_with_free_text(wa: Setup) -> None:
    await wa.citizen_writes()
    photo = Attachment(url="https://city.example/media/1?sig=abc", content_type="image/jpeg")
    await wa.channel.send(wa.notice("staff_reply", "Here is the repaired lamp.", attachments=(photo,)))
    [sent] = wa.fake.to(CITIZEN)
    assert sent.media_urls == ["https://city.example/media/1?sig=abc"]


async def test_an_opted_out_citizen_is_permanent(wa: Setup) -> None:
    await wa.citizen_writes()
    wa.fake.opted_out.add(CITIZEN)
    with pytest.raises(PermanentSendError, match="opted out"):
        await wa.channel.send(wa.notice("staff_reply", "hello"))


@pytest.mark.parametrize(
    ("code", "error", "expected"),
    [
        ("63018", TransientSendError, "messaging limit"),
        ("63012", TransientSendError, "service failed"),
        ("63024", PermanentSendError, "not a WhatsApp user"),
        ("63032", PermanentSendError, "withheld"),
    ],
)
async def test_whatsapps_error_codes_say_whether_to_retry(
    wa: Setup, code: str, error: type[Exception], expected: str
) -> None:
    await wa.citizen_writes()
    wa.fake.fail_next(1, status=400, endpoint="CreateMessage", error=code)
    with pytest.raises(error, match=expected) as raised:
        await wa.channel.send(wa.notice("staff_reply", "hello"))
    if isinstance(raised.value, TransientSendError) and code == "63018":
        assert raised.value.retry_after == 60  # Twilio gave no Retry-After: wait for capacity


async def test_an_outage_is_transient(wa: Setup) -> None:
    wa.fake.down = True
    with pytest.raises(TransientSendError, match="503"):
        await wa.channel.send(wa.notice("resolved"))


def test_the_rate_limit_is_declared() -> None:
    channel = WhatsappChannel(WhatsappConfig(), public_url=PUBLIC)
    assert channel.rate_limit.per_second == 10
    faster = WhatsappConfig(rate_limit=RateLimitConfig(per_second=50))
    assert WhatsappChannel(faster, public_url=PUBLIC).rate_limit.per_second == 50


async def test_a_send_that_reached_twilio_is_found_after_a_restart(wa: Setup) -> None:
    await wa.citizen_writes()
    since = datetime.now(UTC)
    message = wa.notice("staff_reply", "[2026-000007] Transport: fixed")
    await wa.channel.send(message)
    other = WhatsappChannel(wa.channel.config, public_url=PUBLIC, clock=wa.clock)
    await other.start(wa.host)
    try:
        found = await other.find_sent(message, since=since)
    finally:
        await other.stop()
    assert found is not None and found.provider_message_id == wa.fake.to(CITIZEN)[0].sid
    assert wa.fake.listings == [{"To": CITIZEN, "From": CITY, "PageSize": "100"}]


# --- delivery reports ------------------------------------------------------------------------------


async def test_a_failed_status_callback_with_63016_is_a_failed_delivery(wa: Setup) -> None:
    await wa.citizen_writes()
    wa.channel.public_url = str(wa.client.make_url("")).rstrip("/")  # Twilio calls the test server
    result = await wa.channel.send(wa.notice("staff_reply", "hello"))
    sid = result.provider_message_id or ""
    assert await wa.fake.deliver(sid, "failed", error_code=63016) == 204
    [report] = wa.host.reports
    assert (report.channel, report.failed, report.error) == ("whatsapp", True, "63016")
    assert report.idempotency_key is not None and report.idempotency_key.startswith("out-")


async def test_a_forged_status_callback_is_refused(wa: Setup) -> None:
    params = {"MessageSid": new_sid("SM"), "MessageStatus": "failed", "AccountSid": ACCOUNT}
    forged = sign(TOKEN, f"{PUBLIC}/webhooks/sms/status?key=k", params)
    assert (await wa.post(params, path="/webhooks/whatsapp/status?key=k", signature=forged))[0] == 403
    assert (await wa.post(params, path="/webhooks/whatsapp/status?key=k"))[0] == 204
    assert [r.idempotency_key for r in wa.host.reports] == ["k"]


# --- config ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"from_number": "+15005550006"}, "whatsapp:"),
        ({"from_number": "", "messaging_service_sid": ""}, "exactly one"),
        ({"content_templates": {"resolved": "HX123"}}, "HX followed by 32"),
        ({"content_templates": {"resolved": {"sid": "HX" + "a" * 32, "variables": ["name"]}}}, "unknown"),
    ],
)
def test_config_fails_fast(changes: dict[str, Any], reason: str) -> None:
    values = {"enabled": True, "account_sid": ACCOUNT, "auth_token": TOKEN, "from_number": CITY}
    with pytest.raises(pydantic.ValidationError, match=reason):
        WhatsappConfig(**(values | changes))


def test_a_template_left_empty_is_no_template() -> None:
    waiting = {"sid": "", "variables": ["reference", "text"]}  # "${WHATSAPP_TEMPLATE_...:-}" unset
    config = WhatsappConfig(content_templates={"resolved": "", "claimed": waiting, "late": "HX" + "b" * 32})
    assert config.template_for("resolved") is None and config.template_for("claimed") is None
    late = config.template_for("late")
    assert late is not None and late.variables == ["reference"]
