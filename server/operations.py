"""The operator's HTTP endpoints beside the channels' own: /healthz, /readyz, /metrics, and the
signed links to citizens' photos (/media/ID) that the staff desk shows."""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from knowledge import KnowledgeHolder
from router.medialinks import MediaLinks
from router.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from router.metrics import Metrics
from store import Database, OutboxStatus, data


@dataclass
class Operations:
    db: Database
    knowledge: KnowledgeHolder
    metrics: Metrics
    media_links: MediaLinks
    channels: list[str]
    metrics_token: str = ""  # GET /metrics asks for `Authorization: Bearer <this>` when set

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            web.get("/metrics", self.render_metrics),
            web.get("/media/{media_id}", self.media),
        ]

    async def healthz(self, request: web.Request) -> web.Response:
        checks: dict[str, Any] = {}
        status = 200
        try:
            async with self.db.session() as session:
                await data.ping(session)
                checks["outbox_pending"] = await data.count_outbox(session, status=OutboxStatus.PENDING)
                checks["outbox_failed"] = await data.count_outbox(session, status=OutboxStatus.FAILED)
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"error: {type(exc).__name__}"
            status = 503
        base, _ = self.knowledge.current
        checks["faq_entries"] = len(base)
        checks["channels"] = sorted(self.channels)
        return web.json_response(
            {"status": "ok" if status == 200 else "unavailable", **checks}, status=status
        )

    async def readyz(self, request: web.Request) -> web.Response:
        """Ready for traffic: the database answers, its migrations are at this code's head, a FAQ is
        loaded. 503 with what is not, for a load balancer to hold traffic back."""
        problems: dict[str, str] = {}
        try:
            current = await asyncio.wait_for(self.db.current_revision(), timeout=5)
            head = self.db.head_revision()
            if current != head:
                problems["migrations"] = (
                    f"at {current or 'none'}, this code needs {head}: run `bot.py db upgrade`"
                )
        except Exception as exc:  # unreachable, refused, timed out: the name says enough
            problems["database"] = f"not answering ({type(exc).__name__})"
        try:
            base, _ = self.knowledge.current
            faq = f"{len(base)} entries"
        except RuntimeError:
            problems["faq"] = "not loaded"
            faq = "not loaded"
        if problems:
            return web.json_response({"status": "not ready", "problems": problems}, status=503)
        return web.json_response({"status": "ready", "faq": faq})

    async def render_metrics(self, request: web.Request) -> web.Response:
        token = self.metrics_token
        if token and not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {token}"):
            return web.json_response({"error": "forbidden"}, status=403)
        body = await self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def media(self, request: web.Request) -> web.Response:
        """A citizen's photo, for a signed link that has not expired (the staff desk shows them)."""
        raw_id = request.match_info["media_id"]
        query = request.query
        if not raw_id.isdigit() or not self.media_links.valid(
            int(raw_id), query.get("expires", ""), query.get("sig", "")
        ):
            return web.json_response({"error": "forbidden"}, status=403)
        async with self.db.session() as session:
            found = await data.get_media(session, media_id=int(raw_id))
        if found is None or found.data is None:
            return web.json_response({"error": "no such photo (yet)"}, status=404)
        return web.Response(
            body=found.data,
            content_type=found.content_type or "application/octet-stream",
            headers={"Cache-Control": "private, max-age=3600"},
        )
