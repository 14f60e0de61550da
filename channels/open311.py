"""Open311 GeoReport v2's door in: `POST /open311/v2/requests.{json,xml}`, a report from a civic app.

The app sends a form (the spec's application/x-www-form-urlencoded) with its `api_key`, a
`service_code` from `open311.services`, a place (lat and long, address_string or address_id), a
description and an optional media_url. The report becomes a ticket for the service's department
(`InboundMessage.department`: forwarded there, never answered from the FAQ), and the answer is the
ticket's reference as `service_request_id`. The same client posting the same request again within
`dedupe_seconds` gets the same id: the message keeps the first one's provider id, so intake finds
it stored. What the app says about the person (email, names, phone, device and account ids) is
dropped here: it is the app's business, and it never reaches the store.

Everything the API reads (services, requests, discovery) is served by server/open311.py; this
adapter only takes reports in and, like every channel, never touches the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import socket
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
from yarl import URL

from channels.base import (
    Attachment,
    FetchedMedia,
    InboundMessage,
    Location,
    OutboundMessage,
    PermanentSendError,
    Receipt,
    SendResult,
    TransientSendError,
    WebhookChannel,
    read_body,
)
from channels.open311_config import Open311Client, Open311Config, Open311Service
from channels.open311_format import Open311Error, answer, error_answer, format_of
from channels.responses import limited_media

log = logging.getLogger("channels.open311")

MAX_DESCRIPTION_CHARS = 4000  # the spec's limit
MAX_FIELD_CHARS = 2000  # an address, an address id, a media URL
MAX_FIELDS = 200
MAX_REDIRECTS = 3


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Report:
    """A checked report: who sent it, for which service, where, and what it says."""

    client: Open311Client
    service: Open311Service
    description: str
    latitude: float | None
    longitude: float | None
    address: str | None
    address_id: str | None
    media_url: str | None

    def digest(self) -> str:
        """What makes two posts "the same request" (the client's own retry, or a double tap)."""
        fields = [
            self.client.name,
            self.service.code,
            self.description,
            self.latitude,
            self.longitude,
            self.address,
            self.address_id,
            self.media_url,
        ]
        return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


class Open311Channel(WebhookChannel):
    name: ClassVar[str] = "open311"
    fetches_media: ClassVar[bool] = True  # a report's media_url is copied into the store

    def __init__(
        self,
        config: Open311Config,
        *,
        departments: Collection[str] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__()
        if departments is not None:
            for index, service in enumerate(config.services):
                if service.department not in departments:
                    raise ValueError(
                        f"open311.services.{index}.department: {service.department!r} is not one of the "
                        f"departments ({', '.join(departments)})"
                    )
        self.config = config
        self.clock = clock
        self._keys = [(c.api_key.encode(), c) for c in config.clients if c.api_key]
        self._recent = asyncio.Lock()
        self._media: aiohttp.ClientSession | None = None

    def routes(self) -> list[web.AbstractRouteDef]:
        return [web.post("/open311/v2/requests.{fmt}", self.handle_webhook)]

    async def stop(self) -> None:
        if self._media is not None:
            await self._media.close()
            self._media = None

    # --- taking a report in -------------------------------------------------------------------

    def verify(self, request: web.Request, body: bytes) -> bool:
        """Whether the post carries the key of a configured client."""
        try:
            fields = form_fields(request, body)
        except Open311Error:
            return False
        return self.client_of(fields.get("api_key", "")) is not None

    def client_of(self, api_key: str) -> Open311Client | None:
        given = api_key.encode()
        found = None
        for key, client in self._keys:  # every key compared, in constant time each
            if hmac.compare_digest(key, given):
                found = client
        return found

    async def handle_webhook(self, request: web.Request) -> web.StreamResponse:
        try:
            fmt = format_of(request.match_info["fmt"])
        except Open311Error as exc:
            return error_answer("json", exc)
        limit = self.config.max_body_bytes
        try:
            if request.content_length is not None and request.content_length > limit:
                raise Open311Error(400, f"the request body is over {limit} bytes")
            body = await read_body(request, limit + 1)
            if len(body) > limit:
                raise Open311Error(400, f"the request body is over {limit} bytes")
            fields = form_fields(request, body)  # a body that is no form: 400, whatever its key
            if not self.verify(request, body):
                log.warning("open311: refused a post without a valid api_key from %s", request.remote)
                raise Open311Error(403, "Invalid api_key received -- can't proceed with create_request.")
            report = self.report(fields)
        except Open311Error as exc:
            return error_answer(fmt, exc)
        except (ConnectionError, ValueError):
            return error_answer(fmt, Open311Error(400, "could not read the request body"))
        try:
            receipt = await self.take(report)
        except Exception:
            # Nothing was answered, so the app may retry (and gets the same id within dedupe_seconds).
            log.exception("open311: could not store a report; asking the client to retry")
            response = error_answer(fmt, Open311Error(503, "temporarily unavailable; please retry"))
            response.headers["Retry-After"] = "5"
            return response
        if receipt.reference is None:
            # Intake took the text for a question about another reference: no request was made.
            return error_answer(
                fmt, Open311Error(400, "description: describe the problem; no service request was made")
            )
        return answer(fmt, "service_requests", "request", [{"service_request_id": receipt.reference}])

    def report(self, fields: Mapping[str, str]) -> Report:
        """The checked report of an authentic post, or an `Open311Error` naming what is wrong."""
        client = self.client_of(fields.get("api_key", ""))
        if client is None:
            raise Open311Error(403, "Invalid api_key received -- can't proceed with create_request.")
        jurisdiction = fields.get("jurisdiction_id", "").strip()
        if jurisdiction and self.config.jurisdiction_id and jurisdiction != self.config.jurisdiction_id:
            raise Open311Error(404, f"jurisdiction_id {jurisdiction[:100]!r} was not found")
        code = fields.get("service_code", "").strip()
        if not code:
            raise Open311Error(400, "service_code was not provided")
        service = self.config.service(code)
        if service is None:
            raise Open311Error(404, f"service_code {code[:100]!r} was not found")
        problems: list[str] = []
        latitude = _coordinate(fields, "lat", 90.0, problems)
        longitude = _coordinate(fields, "long", 180.0, problems)
        if (latitude is None) != (longitude is None) and not problems:
            problems.append("lat and long must be sent together")
        address = _text(fields, "address_string", MAX_FIELD_CHARS, problems)
        address_id = _text(fields, "address_id", MAX_FIELD_CHARS, problems)
        located = (latitude is not None and longitude is not None) or address or address_id
        if service.location_required and not located and not problems:
            problems.append(
                f"service {service.code!r} needs a location: lat and long, address_string or address_id"
            )
        description = _text(fields, "description", MAX_DESCRIPTION_CHARS, problems) or ""
        media_url = _text(fields, "media_url", MAX_FIELD_CHARS, problems)
        if media_url is not None:
            url = URL(media_url)
            if not url.absolute or url.scheme not in ("http", "https") or not url.host:
                problems.append("media_url must be an http or https URL")
        if problems:
            raise Open311Error(400, *problems)
        return Report(client, service, description, latitude, longitude, address, address_id, media_url)

    async def take(self, report: Report) -> Receipt:
        """Hand the report to intake, under the id of the same request made within dedupe_seconds."""
        digest = report.digest()
        memory = f"recent:{digest[:48]}"
        now = self.clock()
        async with self._recent:  # two copies arriving together in this process get one id
            message_id = _still_recent(await self.host.recall(self.name, memory), now, self.config)
            if message_id is None:
                message_id = f"{digest[:32]}-{int(now.timestamp() * 1000)}"
                await self.host.remember(self.name, memory, f"{now.timestamp():.3f} {message_id}")
        return await self.inbound(self.message(report, message_id, now))

    def message(self, report: Report, message_id: str, received_at: datetime) -> InboundMessage:
        service = report.service
        lines = [report.description.strip() or (service.text_in(service.name, "", "en") or service.code)]
        if report.address:
            lines.append(report.address)
        location = None
        if report.latitude is not None and report.longitude is not None:
            location = Location(report.latitude, report.longitude, label=report.address)
        return InboundMessage(
            channel=self.name,
            # Each report is its own contact: the app is the only one who hears back (by polling),
            # and two reports from one app must never join one ticket.
            sender=f"client:{report.client.name}:{message_id}",
            text="\n".join(lines),
            provider_message_id=message_id,
            received_at=received_at,
            attachments=(Attachment(url=report.media_url),) if report.media_url else (),
            location=location,
            # What GET requests needs to answer for it; nothing about the person.
            raw={"service_code": service.code, "client": report.client.name, "address_id": report.address_id},
            department=service.department,
        )

    # --- the city's side -------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        """Open311 is pull-only: an app asks GET requests for news, nobody can be written to. The
        notices the router makes for a report are kept (marked sent) and go nowhere."""
        return SendResult(provider_message_id=None, route="kept")

    async def fetch_media(self, attachment: Attachment) -> FetchedMedia:
        """Copy a report's media_url (size- and time-limited; redirects followed a few times)."""
        url = URL(attachment.url)
        limit = self.config.max_media_bytes
        if self._media is None:
            timeout = aiohttp.ClientTimeout(total=self.config.media_timeout_seconds)
            self._media = aiohttp.ClientSession(timeout=timeout)
        try:
            for _ in range(MAX_REDIRECTS + 1):
                if not url.absolute or url.scheme not in ("http", "https") or not url.host:
                    raise PermanentSendError(f"not a media URL: {str(url)[:200]}")
                if not self.config.media_private_hosts:
                    await _refuse_private(url)
                async with self._media.get(url, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                        url = url.join(URL(response.headers["Location"]))
                        continue
                    return await _read_media(response, limit, attachment)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise TransientSendError(f"media fetch failed: {type(exc).__name__}: {exc}") from exc
        raise PermanentSendError(f"media_url redirects more than {MAX_REDIRECTS} times")


def form_fields(request: web.Request, body: bytes) -> dict[str, str]:
    """The post's fields: the query string's, then the form's (a form value wins); the first value
    of a repeated name."""
    if body and request.content_type not in ("application/x-www-form-urlencoded", ""):
        raise Open311Error(400, "send the request as application/x-www-form-urlencoded")
    try:
        form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError as exc:
        raise Open311Error(400, "the request body is not UTF-8") from exc
    except ValueError as exc:
        raise Open311Error(400, f"more than {MAX_FIELDS} fields") from exc
    fields: dict[str, str] = {}
    for name, value in request.query.items():
        fields.setdefault(name, value)
    given: dict[str, str] = {}
    for name, value in form:
        given.setdefault(name, value)
    return fields | given


def _text(fields: Mapping[str, str], name: str, limit: int, problems: list[str]) -> str | None:
    value = fields.get(name, "").strip()
    if len(value) > limit:
        problems.append(f"{name} is over {limit} characters")
    return value or None


def _coordinate(fields: Mapping[str, str], name: str, bound: float, problems: list[str]) -> float | None:
    raw = fields.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or abs(value) > bound:
        problems.append(f"{name} must be a WGS84 number between -{bound:g} and {bound:g}")
        return None
    return value


def _still_recent(remembered: str | None, now: datetime, config: Open311Config) -> str | None:
    """The message id remembered for a request, if it was first made within dedupe_seconds."""
    if not remembered:
        return None
    first, _, message_id = remembered.partition(" ")
    try:
        age = now.timestamp() - float(first)
    except ValueError:
        return None
    return message_id if message_id and 0 <= age < config.dedupe_seconds else None


async def _refuse_private(url: URL) -> None:
    """A media_url must point to the public internet: not to the city's own network."""
    host = url.host or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, url.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TransientSendError(f"cannot resolve the media host {host[:100]}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            raise PermanentSendError(f"media_url points to a non-public address ({address})")


async def _read_media(response: aiohttp.ClientResponse, limit: int, attachment: Attachment) -> FetchedMedia:
    if response.status in (404, 410):
        raise PermanentSendError(f"the media is gone ({response.status})")
    if response.status == 429 or response.status >= 500:
        raise TransientSendError(f"media fetch answered {response.status}")
    if response.status >= 300:
        raise PermanentSendError(f"media fetch answered {response.status}")
    return await limited_media(response, limit, attachment)
