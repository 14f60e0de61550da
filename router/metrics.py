"""The operator's metrics, in Prometheus' text format at `GET /metrics` (README, "Monitoring").

Counters move as things happen (a message taken in, a send tried, an FAQ reload); the gauges that the
store knows (the outbox, open and overdue tickets) are read at scrape time, at most once every
`cache_seconds`, so frequent scrapes cost one query each few seconds. Labels are channels,
decisions, results, departments and languages: never a citizen, a ticket reference or a user id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from router.intake import IntakeObserved
from store import Database, OutboxStatus, data, utcnow

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "city_intake"


class Metrics:
    """One registry a bot (no process-wide default: tests build several bots in one process)."""

    def __init__(
        self,
        db: Database,
        *,
        channels: Sequence[str] = (),
        cache_seconds: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            f"{PREFIX}_messages",
            "Citizens' messages taken in, by channel and what they did",
            ["channel", "decision"],
            registry=self.registry,
        )
        self.intake_seconds = Histogram(
            f"{PREFIX}_intake_seconds",
            "Time of a message's intake transaction, waiting for its group's commit included",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.sends = Counter(
            f"{PREFIX}_sends",
            "Attempts to deliver an outgoing message, by channel and result (sent, retried, failed; found: "
            "a reply cut short by a crash found at the provider, not sent again)",
            ["channel", "result"],
            registry=self.registry,
        )
        self.routes = Counter(
            f"{PREFIX}_sent_by_route",
            "Messages sent, by channel and the way the provider took them, for doors with several "
            "(kakao: answer, callback, event, held; whatsapp: text, template)",
            ["channel", "route"],
            registry=self.registry,
        )
        self.faq_reloads = Counter(
            f"{PREFIX}_faq_reloads",
            "FAQ reloads after an edit, by result (ok: in use; failed: the last good FAQ kept)",
            ["result"],
            registry=self.registry,
        )
        self.answers = Counter(
            f"{PREFIX}_answers",
            "Automatic FAQ answers, by the citizen's language",
            ["language"],
            registry=self.registry,
        )
        self._store = _StoreGauges(db, channels=channels, cache_seconds=cache_seconds, clock=clock)
        self.registry.register(self._store)

    def intake(self, seen: IntakeObserved) -> None:
        self.messages.labels(seen.channel, seen.outcome).inc()
        if seen.outcome != "duplicate":
            self.intake_seconds.observe(seen.seconds)
        if seen.answered_language:
            self.answers.labels(seen.answered_language).inc()

    def send(self, channel: str, result: str) -> None:
        self.sends.labels(channel, result).inc()

    def sent_by_route(self, channel: str, route: str) -> None:
        self.routes.labels(channel, route).inc()

    def answered(self, channel: str, route: str) -> None:
        """A reply given in the provider's own response (a Kakao skill's answer): sent that way."""
        self.send(channel, "sent")
        self.sent_by_route(channel, route)

    def faq_reload(self, ok: bool) -> None:
        self.faq_reloads.labels("ok" if ok else "failed").inc()

    async def render(self) -> bytes:
        """The text a scrape gets: the store's gauges refreshed first if they are older than the cache."""
        await self._store.refresh()
        return generate_latest(self.registry)


class _StoreGauges(Collector):
    """Gauges read from the store. prometheus_client collects synchronously; the store is async: the
    scrape handler refreshes the snapshot first, and collect() reports it."""

    def __init__(
        self, db: Database, *, channels: Sequence[str], cache_seconds: float, clock: Callable[[], datetime]
    ) -> None:
        self._db = db
        self._channels = tuple(channels)  # each has an oldest-pending age, 0 when nothing waits
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()
        self._outbox: list[data.OutboxGauge] = []
        self._tickets: list[tuple[str, int, int]] = []
        self._now = clock()

    async def refresh(self) -> None:
        async with self._lock:  # scrapes at the same moment share one read
            if time.monotonic() - self._read_at < self._cache_seconds:
                return
            now = self._clock()
            async with self._db.session() as session:
                self._outbox = await data.outbox_gauges(session)
                self._tickets = await data.open_ticket_gauges(session, now=now)
            self._now, self._read_at = now, time.monotonic()

    def collect(self) -> Iterator[Metric]:
        outbox = GaugeMetricFamily(
            f"{PREFIX}_outbox",
            "Outgoing messages waiting (pending, sending) or failed for good, by channel and state",
            labels=["channel", "state"],
        )
        oldest = GaugeMetricFamily(
            f"{PREFIX}_outbox_oldest_pending_seconds",
            "Age of the oldest message still waiting to be sent, by channel (0: none waits)",
            labels=["channel"],
        )
        waiting: dict[str, float] = dict.fromkeys(self._channels, 0.0)
        for gauge in self._outbox:
            outbox.add_metric([gauge.channel, gauge.status], gauge.rows)
            if gauge.status in (OutboxStatus.PENDING, OutboxStatus.SENDING) and gauge.oldest is not None:
                age = max((self._now - gauge.oldest).total_seconds(), 0.0)
                waiting[gauge.channel] = max(waiting.get(gauge.channel, 0.0), age)
            waiting.setdefault(gauge.channel, 0.0)
        for channel, age in sorted(waiting.items()):
            oldest.add_metric([channel], age)
        open_tickets = GaugeMetricFamily(
            f"{PREFIX}_tickets_open",
            "Tickets someone still has to answer, by department",
            labels=["department"],
        )
        overdue = GaugeMetricFamily(
            f"{PREFIX}_tickets_overdue",
            "Open tickets past their due time, by department",
            labels=["department"],
        )
        for department, count, late in self._tickets:
            open_tickets.add_metric([department], count)
            overdue.add_metric([department], late)
        yield from (outbox, oldest, open_tickets, overdue)
