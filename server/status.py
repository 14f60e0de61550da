"""The public status pages: /status (the city's figures, this week and the weeks before) and
/status/REFERENCE (one ticket's progress).

Server-rendered HTML for any phone: no JavaScript, no outside fonts or styles, tables that fit 320
px. Six languages: ?lang=xx (the switcher's links), else Accept-Language, else the city's. Never a
citizen's words, name, address, number or photos: a ticket page is built from an explicit list of
fields and the notes staff made public, nothing else. A sensitive ticket, an unknown one and a
malformed reference get the same 404, byte for byte.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from router.figures import Figures, Share, compute, weeks
from router.lifecycle import Lifecycle
from server.status_texts import Formats, StatusTexts
from store import Database, data
from store.data import TicketFacts

TEMPLATES = Path(__file__).resolve().parent / "templates"
REFERENCE = re.compile(r"\d{4}-\d{6,9}")  # 2026-000123 (router/intake.py's references)
PAST_WEEKS = 12
# Figures change slowly and cost a scan of 13 weeks of tickets: computed at most this often, and
# browsers and proxies may keep the page as long.
FIGURES_SECONDS = 60.0
# No script, no outside resource, no framing: the pages need nothing but their own inline style.
_NONE = Share()  # a department without such tickets in a range
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Vary": "Accept-Language",  # the language follows the header when ?lang= is not given
}


@dataclass(frozen=True)
class Snapshot:
    """The figures as computed at `at`: this week and each past week (newest first), the past weeks
    together, and the open tickets by department."""

    at: datetime
    by_week: list[Figures]
    past: Figures
    open: list[tuple[str, int, int]]


class StatusPages:
    def __init__(
        self,
        db: Database,
        lifecycle: Lifecycle,
        *,
        texts: StatusTexts | None = None,
        figures_seconds: float = FIGURES_SECONDS,
    ) -> None:
        self.db = db
        self.lifecycle = lifecycle
        self.texts = texts or StatusTexts.load()
        self.figures_seconds = figures_seconds
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._snapshot: Snapshot | None = None
        self._computing = asyncio.Lock()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/status", self.overview),
            web.get("/status/", self.overview),
            web.get("/status/{reference}", self.ticket),
        ]

    # --- pages ------------------------------------------------------------------------------

    async def overview(self, request: web.Request) -> web.Response:
        language = self._language(request)
        wanted = request.query.get("ticket", "").strip()
        if wanted:  # the lookup form, which works without JavaScript: on to the ticket's page
            lang = f"?lang={language}" if "lang" in request.query else ""
            raise web.HTTPSeeOther(f"/status/{quote(wanted[:40], safe='')}{lang}")
        snapshot = await self.figures()
        body = self._render("overview.html", language, "/status", **self._overview(snapshot, language))
        return self._page(body, language, cache=f"public, max-age={int(self.figures_seconds)}")

    async def ticket(self, request: web.Request) -> web.Response:
        language = self._language(request)
        reference = request.match_info["reference"]
        view = await self._ticket(reference, language) if REFERENCE.fullmatch(reference) else None
        if view is None:
            body = self._render("not_found.html", language, "/status")
            return self._page(body, language, cache="no-cache", status=404)
        body = self._render("ticket.html", language, f"/status/{reference}", **view)
        return self._page(body, language, cache="no-cache")  # a new public note shows at once

    # --- what the pages show ----------------------------------------------------------------

    async def figures(self) -> Snapshot:
        """The figures, computed again when older than `figures_seconds` (one computation at a time)."""
        async with self._computing:
            now = self.lifecycle.clock()
            snapshot = self._snapshot
            if snapshot is None or not 0 <= (now - snapshot.at).total_seconds() < self.figures_seconds:
                snapshot = self._snapshot = await self._compute(now)
            return snapshot

    async def _compute(self, now: datetime) -> Snapshot:
        calendar = self.lifecycle.calendar
        ranges = weeks(now, calendar.zone, count=PAST_WEEKS)
        start, end = ranges[-1][0], ranges[0][1]
        async with self.db.session() as session:
            facts = await data.ticket_facts(session, start=start, end=end)
            open_now = await data.open_by_department(session, now=now)

        def work(facts: Sequence[TicketFacts]) -> Snapshot:
            by_week = [compute(facts, start=a, end=b, now=now, calendar=calendar) for a, b in ranges]
            past = compute(facts, start=start, end=ranges[1][1], now=now, calendar=calendar)
            return Snapshot(now, by_week, past, open_now)

        return await asyncio.to_thread(work, facts)  # a city's quarter of tickets: off the event loop

    async def _ticket(self, reference: str, language: str) -> dict[str, Any] | None:
        async with self.db.session() as session:
            ticket = await data.get_ticket(session, reference=reference)
            if ticket is None or ticket.sensitive:
                return None
            notes = await data.public_notes(session, ticket_id=data.id_of(ticket))
        formats = Formats(language, self.lifecycle.config.zone)
        return {
            "reference": ticket.reference,
            "status": self.lifecycle.notices.status_name(ticket.status, language),
            "department": self._department(ticket.department, language),
            "received": formats.moment(ticket.created_at),
            "due": formats.moment(ticket.due_at) if ticket.due_at else None,
            "resolved": formats.moment(ticket.resolved_at) if ticket.resolved_at else None,
            "notes": [(formats.moment(at), text) for at, text in notes],
        }

    def _overview(self, snapshot: Snapshot, language: str) -> dict[str, Any]:
        f = Formats(language, self.lifecycle.config.zone)
        t = self._t(language)
        this, past = snapshot.by_week[0], snapshot.past
        cutoff = self.lifecycle.calendar.config.same_day_cutoff.strftime("%H:%M")

        def hours(value: float | None) -> str:
            return "–" if value is None else t("hours", hours=f.decimal(value))

        def rating(figures: Figures) -> str:
            mean = figures.satisfaction.value
            return (
                "–" if mean is None else t("rating", mean=f.decimal(mean), count=figures.satisfaction.count)
            )

        summary = [
            (t("contacts"), None, str(this.total_contacts), str(past.total_contacts)),
            (
                t("same_day"),
                t("same_day_note", cutoff=cutoff),
                f.percent(this.same_day.value),
                f.percent(past.same_day.value),
            ),
            (t("on_time"), None, f.percent(this.on_time_all.value), f.percent(past.on_time_all.value)),
            (
                t("handling"),
                t("handling_note"),
                hours(this.handling_all.value),
                hours(past.handling_all.value),
            ),
            (t("satisfaction"), None, rating(this), rating(past)),
        ]
        channels = sorted(
            set(this.contacts) | set(past.contacts), key=lambda c: (-past.contacts.get(c, 0), c)
        )
        most = max(past.contacts.values(), default=0)
        on_time = self._in_order(set(this.on_time) | set(past.on_time))
        handled = self._in_order(set(this.handling_hours) | set(past.handling_hours))
        return {
            "as_of": f.moment(snapshot.at),
            "week_start": f.day(this.start),
            "past_weeks": PAST_WEEKS,
            "summary": summary,
            "channels": [
                (
                    self.texts.channel(c, language),
                    this.contacts.get(c, 0),
                    past.contacts.get(c, 0),
                    _width(past.contacts.get(c, 0), most),
                )
                for c in channels
            ],
            "on_time": [
                (
                    self._department(d, language),
                    f.percent(this.on_time.get(d, _NONE).value),
                    f.percent(past.on_time.get(d, _NONE).value),
                    _width(past.on_time.get(d, _NONE).value or 0.0, 1.0),
                )
                for d in on_time
            ],
            "handling": [
                (
                    self._department(d, language),
                    hours(this.handling_hours[d].value if d in this.handling_hours else None),
                    hours(past.handling_hours[d].value if d in past.handling_hours else None),
                )
                for d in handled
            ],
            "open": [
                (self._department(d, language), count, late)
                for d, count, late in sorted(snapshot.open, key=lambda row: self._order(row[0]))
            ],
            "weeks": [
                (
                    f.day(week.start),
                    week.total_contacts,
                    f.percent(week.same_day.value),
                    f.percent(week.on_time_all.value),
                    f.decimal(week.handling_all.value),
                    f.decimal(week.satisfaction.value),
                )
                for week in snapshot.by_week
            ],
        }

    def _department(self, key: str | None, language: str) -> str:
        if not key:
            return self.texts.text("unassigned", language)
        department = self.lifecycle.departments.get(key)
        return department.display_name(language) if department else key

    def _order(self, key: str) -> tuple[int, str]:
        """Departments in config.yaml's order; one no longer configured, then none, last."""
        order = list(self.lifecycle.departments)
        return (order.index(key), key) if key in order else (len(order) + (not key), key)

    def _in_order(self, keys: Iterable[str]) -> list[str]:
        return sorted(keys, key=self._order)

    # --- HTML -------------------------------------------------------------------------------

    def _language(self, request: web.Request) -> str:
        asked = request.query.get("lang")
        chosen = self.texts.choose(
            asked, request.headers.get("Accept-Language"), self.lifecycle.config.default_language
        )
        if chosen is None:
            raise web.HTTPBadRequest(
                text=f"unknown language {asked!r}: use one of {', '.join(self.texts.languages)}"
            )
        return chosen

    def _t(self, language: str) -> Callable[..., str]:
        def t(key: str, **values: object) -> str:
            return self.texts.text(key, language, **values)

        return t

    def _render(self, template: str, language: str, path: str, **values: Any) -> str:
        switcher = [
            {"code": code, "name": name, "href": f"{path}?lang={code}", "current": code == language}
            for code, name in self.texts.languages.items()
        ]
        return self.env.get_template(template).render(
            lang=language, languages=switcher, t=self._t(language), **values
        )

    def _page(self, body: str, language: str, *, cache: str, status: int = 200) -> web.Response:
        headers = {**SECURITY_HEADERS, "Cache-Control": cache, "Content-Language": language}
        return web.Response(
            text=body, status=status, content_type="text/html", charset="utf-8", headers=headers
        )


def _width(value: float, most: float) -> int:
    """A bar's width in percent of the widest."""
    return round(100 * value / most) if most > 0 else 0
