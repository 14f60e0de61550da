"""POST /open311/v2/requests: a civic app's report becomes a ticket for its service's department,
the same report within a minute gets the same id, and a bad post gets the spec's error and leaves
nothing behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from channels.base import PermanentSendError
from channels.open311 import Open311Channel
from store import Contact, Database, Media, Message, Ticket, TicketStatus, data
from tests.conftest import FakeClock, outbox_of
from tests.server.open311_answers import (
    KEY,
    OTHER_KEY,
    REPORT,
    Served,
    json_of,
    post_report,
    posted_id,
    serve_open311,
    services,
    xml_of,
)
from tests.waiting import until as wait_until


@pytest.fixture
async def served(database: Database, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Served]:
    async for found in serve_open311(database, tmp_path, clock):
        yield found


async def tickets(bot: Any) -> list[Ticket]:
    async with bot.db.session() as session:
        return list((await session.exec(select(Ticket).order_by(col(Ticket.id)))).all())


async def test_a_report_is_forwarded_to_the_services_department_with_a_due_time(served: Served) -> None:
    bot, _, client, clock = served
    reference = await posted_id(client)
    view = await bot.desk.show(reference)
    ticket = view.ticket
    assert (ticket.channel, ticket.department, ticket.status) == ("open311", "transport", "forwarded")
    assert ticket.due_at is not None and ticket.due_at > clock.now
    async with bot.db.session() as session:
        message = await data.first_inbound(session, ticket_id=ticket.id or 0)
    assert message is not None and message.location is not None
    assert message.text == "A deep pothole in the right lane\n110 Sejong-daero, Jung-gu"
    assert (message.location["latitude"], message.location["longitude"]) == (37.566295, 126.977945)
    assert message.raw == {"service_code": "pothole", "client": "civic-app", "address_id": None}
    # What the app said about the person was dropped at the door: it is nowhere in the store.
    async with bot.db.session() as session:
        stored = repr((await session.exec(select(Message))).all()) + repr(
            (await session.exec(select(Contact))).all()
        )
    for personal in ("minji", "Minji", "Kim", "010-2345-6789", "device-77aa", "acct-31337"):
        assert personal not in stored
    # The other service has its own department; it needs no place.
    other = await posted_id(client, service_code="dumping", lat="", long="", address_string="")
    assert (await bot.desk.show(other)).ticket.department == "environment"


async def test_the_answer_comes_in_xml_too(served: Served) -> None:
    _, _, client, _ = served
    root = await xml_of(await post_report(client, "xml"), 200)
    assert root.tag == "service_requests"
    [request] = root.findall("request")
    assert [child.tag for child in request] == ["service_request_id"]
    assert (request.findtext("service_request_id") or "").startswith("2026-")


async def test_the_same_report_within_a_minute_gets_the_same_id(served: Served) -> None:
    bot, _, client, clock = served
    first = await posted_id(client)
    clock.now += timedelta(seconds=59)
    assert await posted_id(client) == first  # the app's retry: one ticket, the same id
    assert await posted_id(client, api_key=OTHER_KEY) != first  # another app's report is its own
    assert await posted_id(client, description="Another pothole") != first
    assert len(await tickets(bot)) == 3
    clock.now += timedelta(seconds=2)  # a minute after the first: the same words are a new report
    later = await posted_id(client)
    assert later != first and len(await tickets(bot)) == 4
    assert await posted_id(client) == later


async def test_two_copies_at_once_make_one_ticket(served: Served) -> None:
    bot, _, client, _ = served
    answers = await asyncio.gather(*(post_report(client) for _ in range(5)))
    ids = {(await json_of(a, "post-response.json", 200))[0]["service_request_id"] for a in answers}
    assert len(ids) == 1 and len(await tickets(bot)) == 1


BAD_POSTS = [
    pytest.param({"api_key": "wrong-key-0123456789"}, 403, "api_key", id="unknown-key"),
    pytest.param({"api_key": ""}, 403, "api_key", id="no-key"),
    pytest.param({"jurisdiction_id": "elsewhere.example"}, 404, "jurisdiction_id", id="other-jurisdiction"),
    pytest.param({"service_code": "graffiti"}, 404, "graffiti", id="unknown-service"),
    pytest.param({"service_code": ""}, 400, "service_code was not provided", id="no-service"),
    pytest.param({"lat": "", "long": "", "address_string": ""}, 400, "needs a location", id="no-place"),
    pytest.param({"long": ""}, 400, "lat and long must be sent together", id="lat-alone"),
    pytest.param({"lat": "137.5"}, 400, "lat must be a WGS84 number", id="lat-out-of-range"),
    pytest.param({"long": "east"}, 400, "long must be a WGS84 number", id="long-not-a-number"),
    pytest.param({"media_url": "ftp://files.example/a.jpg"}, 400, "media_url", id="media-not-http"),
    pytest.param({"description": "x" * 4001}, 400, "description is over 4000", id="long-description"),
]


@pytest.mark.parametrize(("fields", "status", "says"), BAD_POSTS)
@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_a_bad_post_gets_the_specs_error_and_stores_nothing(
    served: Served, fields: dict[str, str], status: int, says: str, fmt: str
) -> None:
    bot, _, client, _ = served
    response = await post_report(client, fmt, **fields)
    if fmt == "json":
        body = await json_of(response, "", status)
        assert [e["code"] for e in body] == [status] and says in body[0]["description"]
    else:
        root = await xml_of(response, status)
        assert says in (root.findtext("error/description") or "")
    assert await tickets(bot) == []


async def test_several_problems_are_named_together(served: Served) -> None:
    _, _, client, _ = served
    response = await post_report(client, lat="95", media_url="not a url", description="y" * 4001)
    body = await json_of(response, "", 400)
    descriptions = " | ".join(e["description"] for e in body)
    assert len(body) == 3 and "lat" in descriptions and "media_url" in descriptions
    assert "description" in descriptions


async def test_a_post_that_is_not_a_form_or_has_no_known_format_is_refused(served: Served) -> None:
    _, _, client, _ = served
    as_json = await client.post("/open311/v2/requests.json", json=REPORT)
    assert "x-www-form-urlencoded" in (await json_of(as_json, "", 400))[0]["description"]
    unknown = await client.post("/open311/v2/requests.csv", data=REPORT)
    assert "unknown format" in (await json_of(unknown, "", 400))[0]["description"]
    huge = await client.post("/open311/v2/requests.json", data={**REPORT, "pad": "z" * 70_000})
    assert "over" in (await json_of(huge, "", 400))[0]["description"]


async def test_the_key_may_come_in_the_query_string(served: Served) -> None:
    _, _, client, _ = served
    form = {k: v for k, v in REPORT.items() if k != "api_key"}
    response = await client.post(f"/open311/v2/requests.json?api_key={KEY}", data=form)
    await json_of(response, "post-response.json", 200)


async def test_the_media_url_is_copied_into_the_store(served: Served, aiohttp_server: Any) -> None:
    from aiohttp import web

    bot, _, client, _ = served
    photo = b"\x89PNG\r\n\x1a\n" + b"p" * 2048

    async def serve_photo(request: web.Request) -> web.Response:
        return web.Response(body=photo, content_type="image/png")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/photo.png")

    app = web.Application()
    app.add_routes([web.get("/photo.png", serve_photo), web.get("/p", moved)])
    server = await aiohttp_server(app)
    reference = await posted_id(client, media_url=str(server.make_url("/p")))

    async def stored() -> bool:
        async with bot.db.session() as session:
            rows = (await session.exec(select(Media))).all()
        return bool(rows) and rows[0].data == photo

    await wait_until(stored)
    async with bot.db.session() as session:
        [media] = (await session.exec(select(Media))).all()
    assert media.content_type == "image/png" and (await bot.desk.show(reference)).ticket.channel == "open311"


async def test_a_media_url_on_the_citys_own_network_is_not_fetched() -> None:
    from channels.base import Attachment

    channel = Open311Channel(services(media_private_hosts=False))
    for url in ("http://127.0.0.1:9/a.jpg", "http://[::1]/a.jpg", "http://169.254.169.254/latest"):
        with pytest.raises(PermanentSendError, match="non-public address"):
            await channel.fetch_media(Attachment(url=url))
    await channel.stop()


async def test_notices_for_a_report_are_kept_not_sent(served: Served) -> None:
    bot, _, client, _ = served
    reference = await posted_id(client)

    async def all_kept() -> bool:
        rows = [r for r in await outbox_of(bot) if r.channel == "open311"]
        return bool(rows) and all(r.status == "sent" and r.provider_message_id is None for r in rows)

    await wait_until(all_kept)
    assert (await bot.desk.show(reference)).ticket.status == TicketStatus.FORWARDED
