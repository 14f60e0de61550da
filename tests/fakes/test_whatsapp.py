"""The fake Twilio for WhatsApp holds the SDK to WhatsApp's rules: what it refuses, and why."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from tests.fakes.whatsapp import FakeWhatsapp

CITY, CITIZEN = "whatsapp:+15005550006", "whatsapp:+821012345678"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def setup() -> AsyncIterator[tuple[FakeWhatsapp, Any, Clock]]:
    clock = Clock()
    async with FakeWhatsapp(clock=clock) as fake:
        http = AsyncTwilioHttpClient()
        client = Client(fake.account_sid, fake.auth_token, http_client=http)
        client.edge = client.region = None
        client.api.base_url = fake.base_url
        try:
            yield fake, client, clock
        finally:
            await http.close()
        assert fake.spec_violations == []


async def refused(client: Any, **arguments: Any) -> tuple[int, int]:
    with pytest.raises(TwilioRestException) as raised:
        await client.messages.create_async(to=CITIZEN, from_=CITY, **arguments)
    return raised.value.status, raised.value.code


async def test_free_text_goes_only_within_24_hours_of_the_last_inbound(setup: Any) -> None:
    fake, client, clock = setup
    assert await refused(client, body="hello") == (400, 63016)  # never wrote
    fake.last_inbound[CITIZEN] = clock.now
    clock.now += timedelta(hours=23, minutes=59)
    sent = await client.messages.create_async(to=CITIZEN, from_=CITY, body="hello")
    assert fake.to(CITIZEN)[0].sid == sent.sid
    clock.now += timedelta(minutes=2)
    assert await refused(client, body="hello again") == (400, 63016)


async def test_a_template_goes_any_time_and_is_listed_filled_in(setup: Any) -> None:
    fake, client, _ = setup
    sid = fake.approve("Ticket {{1}}: {{2}}")
    variables = json.dumps({"1": "2026-000007", "2": "resolved"})
    await client.messages.create_async(to=CITIZEN, from_=CITY, content_sid=sid, content_variables=variables)
    [sent] = fake.to(CITIZEN)
    assert (sent.content_sid, sent.content_variables, sent.body) == (
        sid,
        {"1": "2026-000007", "2": "resolved"},
        "Ticket 2026-000007: resolved",
    )
    [listed] = [m async for m in await client.messages.stream_async(to=CITIZEN)]
    assert listed.body == "Ticket 2026-000007: resolved"


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ('{"1": "a", "3": "b"}', 21656),  # keys must be 1..n
        ('{"1": ""}', 21656),  # WhatsApp refuses an empty variable
        ('{"1": "two\\nlines"}', 21656),
        ('{"1": "a", "2": "b", "3": "c"}', 21656),  # more than the template has
        ("not json", 21656),
    ],
)
async def test_bad_content_variables_are_refused(setup: Any, variables: str, code: int) -> None:
    fake, client, _ = setup
    sid = fake.approve("Ticket {{1}}: {{2}}")
    assert await refused(client, content_sid=sid, content_variables=variables) == (400, code)


async def test_an_unknown_template_or_a_body_beside_it_is_refused(setup: Any) -> None:
    fake, client, _ = setup
    assert await refused(client, content_sid="HX" + "0" * 32) == (400, 21655)
    sid = fake.approve("Ticket {{1}}")
    assert await refused(client, content_sid=sid, body="also text") == (400, 21600)


async def test_addresses_must_be_whatsapp_addresses(setup: Any) -> None:
    fake, client, clock = setup
    fake.last_inbound["+821012345678"] = clock.now
    with pytest.raises(TwilioRestException) as raised:
        await client.messages.create_async(to="+821012345678", from_=CITY, body="hi")
    assert raised.value.code == 21211
    fake.last_inbound[CITIZEN] = clock.now
    with pytest.raises(TwilioRestException) as raised:
        await client.messages.create_async(to=CITIZEN, from_="+15005550006", body="hi")
    assert raised.value.code == 63007
