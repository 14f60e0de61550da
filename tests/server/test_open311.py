"""GET /open311/v2/: discovery, services, requests and tokens in JSON and XML, each JSON answer
checked against the GeoReport v2 schemas and each XML one parsed; a resolved report reads closed
with the staff's public note; a sensitive ticket reads as one that does not exist; and no answer
ever carries a citizen's words, name, number, address or photo."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from router.desk import Staff
from store import Database, data
from tests.conftest import FakeClock
from tests.server.open311_answers import (
    Served,
    get_json,
    get_xml,
    posted_id,
    serve_open311,
)

SEOUL = ZoneInfo("Asia/Seoul")
EN = {"Accept-Language": "en-GB,en;q=0.9"}
KIM = Staff(id="cli:kim", name="Kim")


@pytest.fixture
async def served(database: Database, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Served]:
    async for found in serve_open311(database, tmp_path, clock):
        yield found


async def test_discovery_names_this_endpoint_and_both_formats(served: Served) -> None:
    _, _, client, _ = served
    body = await get_json(client, "/open311/v2/discovery.json", "ours/discovery.json")
    [endpoint] = body["endpoints"]
    assert endpoint["url"] == "http://localhost:8080/open311/v2"
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}
    assert body["contact"] == "open311@city.example"
    root = await get_xml(client, "/open311/v2/discovery.xml")
    assert root.tag == "discovery" and root.findtext("key_service") == body["key_service"]
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == endpoint["formats"]


async def test_services_come_from_config_in_the_apps_language(served: Served) -> None:
    _, _, client, _ = served
    listed = await get_json(client, "/open311/v2/services.json", "services.json", headers=EN)
    assert [(s["service_code"], s["service_name"], s["group"]) for s in listed] == [
        ("pothole", "Pothole", "street"),
        ("dumping", "Illegal dumping", "sanitation"),
    ]
    assert listed[0]["keywords"] == "pothole, road" and listed[0]["type"] == "realtime"
    assert listed[0]["metadata"] is False and listed[1]["description"] is None
    korean = await get_json(client, "/open311/v2/services.json", "services.json")  # the city's language
    assert korean[0]["service_name"] == "포트홀"
    root = await get_xml(client, "/open311/v2/services.xml", headers=EN)
    assert [s.findtext("service_code") for s in root.findall("service")] == ["pothole", "dumping"]
    assert root.findtext("service/metadata") == "false" and root.findtext("service[2]/description") == ""


async def test_a_service_definition_and_an_unknown_service(served: Served) -> None:
    _, _, client, _ = served
    body = await get_json(client, "/open311/v2/services/pothole.json", "service-definition.json")
    assert body == {"service_code": "pothole", "attributes": []}
    root = await get_xml(client, "/open311/v2/services/pothole.xml")
    assert root.tag == "service_definition" and root.findtext("service_code") == "pothole"
    for fmt in ("json", "xml"):
        path = f"/open311/v2/services/graffiti.{fmt}"
        if fmt == "json":
            [error] = await get_json(client, path, "", 404)
            assert error["code"] == 404 and "graffiti" in error["description"]
        else:
            await get_xml(client, path, 404)


async def test_a_report_reads_open_with_its_department_and_due_time(served: Served) -> None:
    bot, _, client, _ = served
    reference = await posted_id(client)
    ticket = (await bot.desk.show(reference)).ticket
    assert ticket.due_at is not None
    [request] = await get_json(client, f"/open311/v2/requests/{reference}.json", "requests.json", headers=EN)
    assert request["service_request_id"] == reference and request["status"] == "open"
    assert (request["service_code"], request["service_name"]) == ("pothole", "Pothole")
    assert request["agency_responsible"] == "Transport and Roads"
    assert request["requested_datetime"] == "2026-11-23T10:00:00+09:00"
    assert request["expected_datetime"] == ticket.due_at.astimezone(SEOUL).isoformat(timespec="seconds")
    assert (request["lat"], request["long"]) == (37.566, 126.978)  # rounded: the street, not the door
    assert request["status_notes"] is None
    for private in ("description", "address", "address_id", "media_url"):
        assert request[private] is None
    root = await get_xml(client, f"/open311/v2/requests/{reference}.xml")
    assert root.tag == "service_requests" and root.findtext("request/service_request_id") == reference
    assert root.findtext("request/agency_responsible") == "교통도로과"  # no Accept-Language: the city's
    assert root.findtext("request/status") == "open" and root.findtext("request/description") == ""
    listed = await get_json(client, "/open311/v2/requests.json", "requests.json")
    assert [r["service_request_id"] for r in listed] == [reference]


async def test_a_resolved_report_reads_closed_with_the_public_notes(served: Served) -> None:
    bot, _, client, clock = served
    reference = await posted_id(client)
    ticket = (await bot.desk.show(reference)).ticket
    async with bot.db.transaction() as session:
        await data.add_event(
            session,
            ticket_id=ticket.id or 0,
            actor="staff:cli:kim",
            kind="public_note",
            detail={"text": "A crew is on its way."},
            at=clock.now,
        )
        await data.add_event(
            session, ticket_id=ticket.id or 0, actor="staff:cli:kim", kind="note", detail={"text": "internal"}
        )
    clock.now += timedelta(hours=3)
    async with bot.db.transaction() as session:
        await data.add_event(
            session,
            ticket_id=ticket.id or 0,
            actor="staff:cli:kim",
            kind="public_note",
            detail={"text": "Filled in this afternoon."},
            at=clock.now,
        )
    await bot.desk.resolve(reference, "The hole is filled. Thank you!", staff=KIM)
    [request] = await get_json(client, f"/open311/v2/requests/{reference}.json", "requests.json")
    assert request["status"] == "closed"
    assert request["status_notes"] == "A crew is on its way.\nFilled in this afternoon."
    assert request["updated_datetime"] == "2026-11-23T13:00:00+09:00"  # when it was resolved
    root = await get_xml(client, f"/open311/v2/requests/{reference}.xml")
    assert root.findtext("request/status_notes") == request["status_notes"]
    closed = await get_json(client, "/open311/v2/requests.json?status=closed", "requests.json")
    still_open = await get_json(client, "/open311/v2/requests.json?status=open", "requests.json")
    assert [r["service_request_id"] for r in closed] == [reference] and still_open == []


async def test_requests_are_filtered_by_service_status_and_time(served: Served) -> None:
    _, _, client, clock = served
    pothole = await posted_id(client)
    clock.now += timedelta(days=2)
    dumping = await posted_id(client, service_code="dumping", lat="", long="", address_string="")
    path = "/open311/v2/requests.json"

    async def ids(query: str) -> list[str]:
        return [r["service_request_id"] for r in await get_json(client, path + query, "requests.json")]

    assert await ids("") == [dumping, pothole]  # newest first
    assert await ids("?service_code=dumping") == [dumping]
    assert await ids("?service_code=pothole,dumping&status=open,closed") == [dumping, pothole]
    assert await ids("?start_date=2026-11-24T00:00:00Z") == [dumping]
    assert await ids("?end_date=2026-11-24T00:00:00%2B09:00") == [pothole]
    assert await ids(f"?service_request_id={pothole},2026-999999&service_code=dumping") == [pothole]
    clock.now += timedelta(days=91)  # the default window is the last 90 days
    assert await ids("") == []
    root = await get_xml(client, "/open311/v2/requests.xml?start_date=2026-11-01T00:00:00Z")
    assert [r.findtext("service_request_id") for r in root.findall("request")] == [dumping, pothole]
    for query, says in [
        ("?status=pending", "status must be open or closed"),
        ("?start_date=yesterday", "start_date must be a W3C date"),
        ("?end_date=2026-11-24T00:00:00", "needs a time zone"),
        ("?start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z", "more than 90 days"),
        ("?start_date=2026-06-01T00:00:00Z&end_date=2026-01-01T00:00:00Z", "before start_date"),
    ]:
        [error] = await get_json(client, path + query, "", 400)
        assert says in error["description"]
        await get_xml(client, path.replace(".json", ".xml") + query, 400)


async def test_a_token_is_the_requests_id(served: Served) -> None:
    _, _, client, _ = served
    reference = await posted_id(client)
    body = await get_json(client, f"/open311/v2/tokens/{reference}.json", "token-response.json")
    assert body == [{"service_request_id": reference, "token": reference}]
    root = await get_xml(client, f"/open311/v2/tokens/{reference}.xml")
    assert root.findtext("request/token") == reference
    await get_json(client, "/open311/v2/tokens/2026-999999.json", "", 404)
    await get_xml(client, "/open311/v2/tokens/2026-999999.xml", 404)


async def test_another_jurisdiction_and_an_unknown_format(served: Served) -> None:
    _, _, client, _ = served
    [error] = await get_json(client, "/open311/v2/services.json?jurisdiction_id=elsewhere.example", "", 404)
    assert "elsewhere.example" in error["description"]
    await get_json(client, "/open311/v2/services.json?jurisdiction_id=city.example", "services.json")
    [error] = await get_json(client, "/open311/v2/services.html", "", 400)
    assert "unknown format" in error["description"]


async def test_a_sensitive_ticket_reads_as_one_that_does_not_exist(served: Served) -> None:
    bot, _, client, _ = served
    reference = await posted_id(client)
    async with bot.db.transaction() as session:
        ticket = await data.get_ticket(session, reference=reference)
        assert ticket is not None
        ticket.sensitive = True
        session.add(ticket)
    unknown = "2026-999999"
    for fmt in ("json", "xml"):
        for kind in ("requests", "tokens"):
            hidden = await client.get(f"/open311/v2/{kind}/{reference}.{fmt}")
            missing = await client.get(f"/open311/v2/{kind}/{unknown}.{fmt}")
            assert hidden.status == missing.status == 404
            assert (await hidden.text()).replace(reference, unknown) == await missing.text()
    assert (
        await get_json(client, f"/open311/v2/requests.json?service_request_id={reference}", "requests.json")
        == []
    )
    assert await get_json(client, "/open311/v2/requests.json", "requests.json") == []


async def test_no_answer_carries_personal_data(served: Served) -> None:
    _, memory, client, _ = served
    words = "My number is 010-9876-5432 and I live at 12 Jongno-gu Apt 301; the streetlight outside is broken"
    phoned = (await memory.push(words, sender="+821055512345")).reference
    assert phoned is not None
    reported = await posted_id(client, description="Pothole outside 7 Yulgok-ro, call me on 010-1111-2222")
    answers = []
    for fmt in ("json", "xml"):
        for path in (
            f"requests/{phoned}",
            f"requests/{reported}",
            f"tokens/{phoned}",
            "requests",
            "services",
            "discovery",
        ):
            response = await client.get(f"/open311/v2/{path}.{fmt}", headers=EN)
            assert response.status == 200, path
            answers.append(await response.text())
        listing = await client.get(f"/open311/v2/requests.{fmt}?service_request_id={phoned},{reported}")
        answers.append(await listing.text())
    everything = "\n".join(answers)
    for personal in (
        "010-9876-5432",
        "9876",
        "+821055512345",
        "55512345",
        "Jongno",
        "Apt 301",
        "streetlight",
        "Yulgok",
        "010-1111-2222",
        "Sejong",  # the report's address_string
        "Minji",
        "minji.kim@example.com",
        "010-2345-6789",
        "deep pothole",
    ):
        assert personal not in everything, personal
    [other] = await get_json(client, f"/open311/v2/requests/{phoned}.json", "requests.json", headers=EN)
    # A ticket that came another way: its status, department and times, and nothing of its place.
    assert other["service_code"] == "other" and other["service_name"] is None
    assert other["agency_responsible"] == "Transport and Roads"
    assert (other["lat"], other["long"]) == (None, None)
    # Only Open311's reports are listed; another channel's ticket is found by its reference.
    listed = await get_json(client, "/open311/v2/requests.json", "requests.json")
    assert [r["service_request_id"] for r in listed] == [reported]
