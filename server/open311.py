"""Open311 GeoReport v2's read side at /open311/v2/: discovery, services, requests and tokens, in
JSON and XML. Reports come in through the Open311 channel (channels/open311.py, POST requests); this
part reads the store for the answers, which carry no personal data:

- GET requests lists the reports made through Open311; with `service_request_id` it finds any
  ticket by its reference, as the public status page does (an app can follow a report phoned in).
- `description`, `address` and `media_url` are always null: they are a citizen's words, possibly
  their home, their photo. A report's coordinates (Open311's only) are given rounded
  (`open311.public_location_decimals`).
- A sensitive ticket answers exactly as one that does not exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from channels import Channel
from channels.open311 import Open311Channel
from channels.open311_config import OTHER_SERVICE, Open311Config
from channels.open311_format import (
    MIME,
    SPECIFICATION,
    Format,
    Open311Error,
    answer,
    error_answer,
    format_of,
    w3c,
)
from router import DepartmentConfig
from server.config import BotConfig
from store import Database, TicketStatus, data

PREFIX = "/open311/v2"
# Open311 knows two states: a ticket answered, resolved or closed is "closed" (it has been dealt with).
CLOSED = frozenset({TicketStatus.ANSWERED, TicketStatus.RESOLVED, TicketStatus.CLOSED})
OPEN = frozenset(TicketStatus) - CLOSED
MAX_SPAN = timedelta(days=90)  # the spec's longest start_date..end_date, and the default window

Handler = Callable[[web.Request, Format, str], Awaitable[web.Response]]


@dataclass
class Open311Api:
    db: Database
    config: Open311Config
    departments: Mapping[str, DepartmentConfig]
    zone: ZoneInfo
    default_language: str
    public_url: str
    clock: Callable[[], datetime]
    changeset: str = field(init=False)

    def __post_init__(self) -> None:
        # Services change only with the config, which is read at start-up: so is this.
        self.changeset = w3c(self.clock(), self.zone) or ""

    @classmethod
    def serving(
        cls, channel: Channel, db: Database, config: BotConfig, *, clock: Callable[[], datetime]
    ) -> Open311Api:
        """The read side of the running Open311 channel (its services and settings)."""
        if not isinstance(channel, Open311Channel):
            raise TypeError(f"the open311 channel is a {type(channel).__name__}, not an Open311Channel")
        router = config.router
        return cls(
            db,
            channel.config,
            config.departments,
            router.zone,
            router.default_language,
            config.server.public_url,
            clock,
        )

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(PREFIX + "/discovery.{fmt}", self._serve(self.discovery)),
            web.get(PREFIX + "/services.{fmt}", self._serve(self.services)),
            web.get(PREFIX + "/services/{code}.{fmt}", self._serve(self.service_definition)),
            web.get(PREFIX + "/requests.{fmt}", self._serve(self.requests)),
            web.get(PREFIX + "/requests/{id}.{fmt}", self._serve(self.request)),
            web.get(PREFIX + "/tokens/{token}.{fmt}", self._serve(self.token)),
        ]

    def _serve(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        """The format from the suffix, the jurisdiction checked, errors as the spec's list."""

        async def serve(request: web.Request) -> web.Response:
            fmt: Format = "json"
            try:
                fmt = format_of(request.match_info["fmt"])
                wanted = request.query.get("jurisdiction_id", "").strip()
                if wanted and self.config.jurisdiction_id and wanted != self.config.jurisdiction_id:
                    raise Open311Error(404, f"jurisdiction_id {wanted[:100]!r} was not found")
                return await handler(request, fmt, language_of(request, self.default_language))
            except Open311Error as exc:
                return error_answer(fmt, exc)

        return serve

    # --- discovery and services ------------------------------------------------------------------

    async def discovery(self, request: web.Request, fmt: Format, language: str) -> web.Response:
        endpoint = {
            "specification": SPECIFICATION,
            "url": self.public_url.rstrip("/") + PREFIX,
            "changeset": self.changeset,
            "type": "production",
            "formats": [MIME["xml"], MIME["json"]],
        }
        body = {
            "changeset": self.changeset,
            "contact": self.config.contact,
            "key_service": self.config.key_service,
            "endpoints": [endpoint],
        }
        return answer(fmt, "discovery", None, body)

    async def services(self, request: web.Request, fmt: Format, language: str) -> web.Response:
        listed = []
        for service in self.config.services:
            listed.append(
                {
                    "service_code": service.code,
                    "service_name": service.text_in(service.name, language, self.default_language),
                    "description": service.text_in(service.description, language, self.default_language),
                    "metadata": False,  # no extra form fields: a description and a place are enough
                    "type": "realtime",  # the id comes back in POST's answer
                    "keywords": ", ".join(service.keywords) or None,
                    "group": service.group,
                }
            )
        return answer(fmt, "services", "service", listed)

    async def service_definition(self, request: web.Request, fmt: Format, language: str) -> web.Response:
        code = request.match_info["code"]
        if self.config.service(code) is None:
            raise Open311Error(404, f"service_code {code[:100]!r} was not found")
        return answer(fmt, "service_definition", None, {"service_code": code, "attributes": []})

    # --- requests ----------------------------------------------------------------------------

    async def requests(self, request: web.Request, fmt: Format, language: str) -> web.Response:
        query = request.query
        limit = self.config.max_requests
        references = _listed(query.get("service_request_id", ""))
        async with self.db.session() as session:
            if references:  # "this overrides all other arguments"
                rows = await data.open311_requests(session, references=references[:limit], limit=limit)
            else:
                start, end = self._window(query.get("start_date", ""), query.get("end_date", ""))
                rows = await data.open311_requests(
                    session,
                    service_codes=_listed(query.get("service_code", "")) or None,
                    statuses=_statuses(query.get("status", "")),
                    start=start,
                    end=end,
                    limit=limit,
                )
            notes = await data.public_notes_by_ticket(session, ticket_ids=[r.ticket_id for r in rows])
        listed = [self._request(row, notes.get(row.ticket_id, []), language) for row in rows]
        return answer(fmt, "service_requests", "request", listed)

    async def request(self, request: web.Request, fmt: Format, language: str) -> web.Response:
        reference = request.match_info["id"]
        async with self.db.session() as session:
            rows = await data.open311_requests(session, references=[reference], limit=1)
            notes = await data.public_notes_by_ticket(session, ticket_ids=[r.ticket_id for r in rows])
        if not rows:  # unknown or sensitive: the same answer
            raise Open311Error(404, f"service_request_id {reference[:100]!r} was not found")
        row = rows[0]
        return answer(
            fmt, "service_requests", "request", [self._request(row, notes.get(row.ticket_id, []), language)]
        )

    async def token(self, request: web.Request, fmt: Format, language: str) -> web.Response:
        """Every service is realtime, so no token is ever handed out; a client written for batch
        servers that asks with a request's id gets that id back."""
        token = request.match_info["token"]
        async with self.db.session() as session:
            rows = await data.open311_requests(session, references=[token], limit=1)
        if not rows:
            raise Open311Error(404, f"token {token[:100]!r} was not found")
        return answer(
            fmt, "service_requests", "request", [{"service_request_id": rows[0].reference, "token": token}]
        )

    def _request(self, row: data.Open311Request, notes: Sequence[str], language: str) -> dict[str, Any]:
        closed = row.status in CLOSED
        service = self.config.service(row.service_code) if row.service_code else None
        department = self.departments.get(row.department or "")
        decimals = self.config.public_location_decimals
        located = decimals is not None and row.latitude is not None and row.longitude is not None
        name = service.text_in(service.name, language, self.default_language) if service else None
        return {
            "service_request_id": row.reference,
            "status": "closed" if closed else "open",
            "status_notes": "\n".join(notes) or None,
            "service_name": name,
            "service_code": row.service_code or OTHER_SERVICE,
            "description": None,  # a citizen's words: never public
            "agency_responsible": department.display_name(language) if department else None,
            "service_notice": None,
            "requested_datetime": w3c(row.created_at, self.zone),
            "updated_datetime": w3c(
                (row.closed_at or row.resolved_at or row.updated_at) if closed else row.updated_at, self.zone
            ),
            "expected_datetime": w3c(row.due_at, self.zone),
            "address": None,  # it may be the citizen's home
            "address_id": None,
            "zipcode": None,
            "lat": round(row.latitude, decimals) if located and row.latitude is not None else None,
            "long": round(row.longitude, decimals) if located and row.longitude is not None else None,
            "media_url": None,  # a citizen's photo: staff see it, the public does not
        }

    def _window(self, start_text: str, end_text: str) -> tuple[datetime, datetime]:
        """[start, end] from the query, at most 90 days; the most recent 90 days by default."""
        start, end = _when(start_text, "start_date"), _when(end_text, "end_date")
        if start is None and end is None:
            end = self.clock()
        if start is None:
            assert end is not None
            start = end - MAX_SPAN
        if end is None:
            end = start + MAX_SPAN
        if end < start:
            raise Open311Error(400, "end_date is before start_date")
        if end - start > MAX_SPAN:
            raise Open311Error(400, "start_date and end_date may not span more than 90 days")
        return start, end


def language_of(request: web.Request, default: str) -> str:
    """The first language the app's Accept-Language names (its primary tag), else the city's."""
    for part in request.headers.get("Accept-Language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag and tag != "*":
            return tag.split("-")[0]
    return default


def _listed(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _statuses(value: str) -> list[str] | None:
    wanted = _listed(value)
    unknown = [w for w in wanted if w not in ("open", "closed")]
    if unknown:
        raise Open311Error(400, f"status must be open or closed, not {unknown[0][:20]!r}")
    if not wanted or set(wanted) == {"open", "closed"}:
        return None
    return sorted(OPEN if wanted[0] == "open" else CLOSED)


def _when(value: str, name: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise Open311Error(400, f"{name} must be a W3C date and time, e.g. 2026-01-01T00:00:00Z") from exc
    if at.tzinfo is None:
        raise Open311Error(400, f"{name} needs a time zone (Z or an offset such as +09:00)")
    return at
