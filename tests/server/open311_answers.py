"""Checking /open311/v2/ answers: every JSON one against the vendored GeoReport v2 schemas
(tests/specs/open311, see its NOTICE.md), every XML one parsed, both with the spec's headers; and
a whole bot serving the API on a fake clock."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

import bot as bot_module
from channels.memory import MemoryChannel
from channels.open311 import Open311Channel
from channels.open311_config import Open311Client, Open311Config, Open311Service
from store import Database
from tests.conftest import ROOT, FakeClock, config_for_tests

SPECS = ROOT / "tests" / "specs" / "open311"
KEY = "civic-app-key-0123456789"
OTHER_KEY = "other-app-key-9876543210"
W3C = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
DATETIMES = ("requested_datetime", "updated_datetime", "expected_datetime")


def _registry() -> Registry:
    resources = [
        (path.relative_to(SPECS).as_posix(), Resource.from_contents(json.loads(path.read_text()), DRAFT7))
        for path in sorted(SPECS.rglob("*.json"))
    ]
    return Registry().with_resources(resources)


REGISTRY = _registry()


def check_schema(body: Any, schema: str) -> None:
    """`body` is valid against the schema file `schema`, and its times are W3C with a zone."""
    Draft7Validator(REGISTRY.contents(schema), registry=REGISTRY).validate(body)
    for item in body if isinstance(body, list) else [body]:
        for name in DATETIMES:
            if isinstance(item, dict) and item.get(name) is not None:
                assert W3C.match(item[name]), f"{name} {item[name]!r} is not W3C with a time zone"


async def get_json(client: TestClient, path: str, schema: str, status: int = 200, **kwargs: Any) -> Any:
    response = await client.get(path, **kwargs)
    return await json_of(response, schema, status)


async def json_of(response: Any, schema: str, status: int) -> Any:
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/json" and response.charset == "utf-8"
    body = json.loads(text)
    check_schema(body, "ours/errors.json" if status >= 400 else schema)
    return body


async def get_xml(client: TestClient, path: str, status: int = 200, **kwargs: Any) -> ET.Element:
    response = await client.get(path, **kwargs)
    return await xml_of(response, status)


async def xml_of(response: Any, status: int) -> ET.Element:
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "text/xml" and response.charset == "utf-8"
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    root = ET.fromstring(text.encode())
    if status >= 400:
        assert root.tag == "errors"
        errors = root.findall("error")
        assert errors and all(e.findtext("code") == str(status) and e.findtext("description") for e in errors)
    return root


def services(**overrides: Any) -> Open311Config:
    """Two services (one needs a place, one does not) and two clients, one without a key."""
    return Open311Config(
        **{
            "enabled": True,
            "jurisdiction_id": "city.example",
            "contact": "open311@city.example",
            "key_service": "Ask open311@city.example for a key",
            "services": [
                Open311Service(
                    code="pothole",
                    name={"ko": "포트홀", "en": "Pothole"},
                    description={"en": "A hole in the road"},
                    group="street",
                    department="transport",
                    keywords=["pothole", "road"],
                ),
                Open311Service(
                    code="dumping",
                    name={"ko": "무단투기", "en": "Illegal dumping"},
                    group="sanitation",
                    department="environment",
                    location_required=False,
                ),
            ],
            "clients": [
                Open311Client(name="civic-app", api_key=KEY),
                Open311Client(name="other-app", api_key=OTHER_KEY),
                Open311Client(name="keyless"),
            ],
            "media_private_hosts": True,  # the tests' media server is on 127.0.0.1
            **overrides,
        }
    )


Served = tuple[bot_module.Bot, MemoryChannel, TestClient, FakeClock]


async def serve_open311(
    database: Database, tmp_path: Path, clock: FakeClock, config: Open311Config | None = None
) -> AsyncIterator[Served]:
    """The whole bot on `database` with the Open311 section enabled, its HTTP app, the fake clock."""
    bot_config = config_for_tests(tmp_path).model_copy(update={"open311": config or services()})
    memory = MemoryChannel()
    bot = await bot_module.build(
        bot_config, base_dir=ROOT, channels=[memory], webchat=False, db=database, clock=clock
    )
    channel = bot.channels["open311"]
    assert isinstance(channel, Open311Channel)  # built from config, like every provider channel
    channel.clock = clock
    async with bot.running(sweeps=False), TestClient(TestServer(bot_module.make_app(bot))) as client:
        yield bot, memory, client, clock


REPORT = {
    "api_key": KEY,
    "jurisdiction_id": "city.example",
    "service_code": "pothole",
    "lat": "37.566295",
    "long": "126.977945",
    "address_string": "110 Sejong-daero, Jung-gu",
    "description": "A deep pothole in the right lane",
    # Personal data the spec lets an app send: dropped at the door.
    "email": "minji.kim@example.com",
    "first_name": "Minji",
    "last_name": "Kim",
    "phone": "010-2345-6789",
    "device_id": "device-77aa",
    "account_id": "acct-31337",
}


async def post_report(client: TestClient, fmt: str = "json", **fields: str) -> Any:
    """POST a report (REPORT with `fields` changed; an empty value leaves the field out)."""
    form = {k: v for k, v in {**REPORT, **fields}.items() if v != ""}
    return await client.post(f"/open311/v2/requests.{fmt}", data=form)


async def posted_id(client: TestClient, **fields: str) -> str:
    body = await json_of(await post_report(client, **fields), "post-response.json", 200)
    assert len(body) == 1 and set(body[0]) == {"service_request_id"}
    return str(body[0]["service_request_id"])
