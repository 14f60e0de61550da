"""The department model as the router uses it: learned from the store's routing examples at start-up
and again whenever they changed (checked every `router.routing.retrain_minutes`), in a worker thread
so the event loop keeps serving meanwhile. Until a model exists (no examples yet) nothing is
predicted and tickets that no rule decides go to triage, as before.

Examples are written by the desk: when a ticket is resolved, its first citizen message and the
department that resolved it (after a staff reassignment: the new one) become one; sensitive tickets
never do. `bot.py routing import` adds historic complaints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from knowledge.routing import DepartmentModel, FileExample, NotEnoughExamples
from router.config import RoutingConfig
from store import Database, RoutingExample, RoutingSource, data, utcnow

log = logging.getLogger("router.routing")


class DepartmentLearner:
    """Holds the current department model (or None) and learns a new one when the examples change."""

    def __init__(
        self,
        db: Database,
        config: RoutingConfig,
        *,
        departments: Collection[str],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.config = config
        # Only these are ever predicted: the configured departments a ticket may be routed to.
        self.departments = frozenset(departments)
        self.clock = clock
        self._model: DepartmentModel | None = None
        self._version: tuple[int, int] | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def model(self) -> DepartmentModel | None:
        return self._model

    def route(self, text: str) -> tuple[str, float] | None:
        """The department the model is sure enough of (at or above its threshold), else None."""
        model = self._model
        if model is None or not self.config.enabled:
            return None
        at = self.clock() if self.config.time_scale_days else None
        return model.route(text, at=at)

    async def retrain(self, *, force: bool = False) -> bool:
        """Learn again from the store if the examples changed since the last time (or `force`);
        True when a new model (or the absence of one) was put in place."""
        async with self._lock:
            reading = asyncio.ensure_future(self._read(force))
            try:
                found = await asyncio.shield(reading)
            except asyncio.CancelledError:
                # Shutting down: a read in progress ends first (it takes milliseconds), so that its
                # connection goes back to the pool whole before the database is closed.
                with contextlib.suppress(Exception):
                    await reading
                raise
            if found is None:
                return False
            version, rows = found
            texts = [row.text for row in rows]
            labels = [row.department for row in rows]
            times = [row.created_at for row in rows]
            started = time.perf_counter()
            try:
                model: DepartmentModel | None = await asyncio.to_thread(self._fit, texts, labels, times)
            except NotEnoughExamples as exc:
                model = None
                log.info("routing: no department model yet: %s (%d examples)", exc, len(rows))
            self._model, self._version = model, version
            if model is not None and model.estimate is not None:
                estimate = model.estimate
                log.info(
                    "routing: learned %d departments from %d examples in %.1f s; threshold %.3f "
                    "(validated %s: precision %.3f, coverage %.3f, top-3 %.3f)",
                    len(model.departments),
                    model.examples,
                    time.perf_counter() - started,
                    model.threshold,
                    model.validated_by,
                    estimate.precision,
                    estimate.coverage,
                    estimate.top3,
                )
            return True

    async def _read(self, force: bool) -> tuple[tuple[int, int], Sequence[RoutingExample]] | None:
        """The examples and their version, or None when the version is the one learned already."""
        async with self.db.session() as session:
            version = await data.routing_examples_version(session)
            if version == self._version and not force:
                return None
            return version, await data.routing_examples(session, departments=self.departments)

    def _fit(self, texts: list[str], labels: list[str], times: list[datetime]) -> DepartmentModel:
        model = DepartmentModel(
            target_precision=self.config.target_precision,
            min_examples=self.config.min_examples_per_department,
            time_scale_days=self.config.time_scale_days,
            validation=self.config.validation,
        )
        return model.fit(texts, labels, times=times)

    async def run(self) -> None:
        """Learn now, then look for changed examples every `retrain_minutes`, until cancelled."""
        while True:
            try:
                await self.retrain()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failure keeps the last model; the next round tries again
                log.exception("routing: learning the department model failed; keeping the last one")
            await asyncio.sleep(self.config.retrain_minutes * 60)


@dataclass
class ImportReport:
    """What an import did: added rows, rows already there, and rows left out by department."""

    added: int = 0
    already_there: int = 0
    unknown: Counter[str] = field(default_factory=Counter)  # department as written -> rows skipped
    mapped: Counter[str] = field(default_factory=Counter)  # department as written -> rows renamed


def parse_department_map(
    pairs: Sequence[str], departments: Collection[str] | None, *, given: Mapping[str, str] | None = None
) -> dict[str, str]:
    """OLD=NEW pairs (a spreadsheet's department -> a configured one), after those `given` (from a
    file). Raises ValueError on a pair without "=" or a NEW that is not one of `departments`."""
    mapping: dict[str, str] = {}
    items = [(str(old), str(new), f"{old}={new}") for old, new in (given or {}).items()]
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep:
            raise ValueError(f"{pair!r} is not OLD=NEW")
        items.append((old, new, pair))
    for old, new, pair in items:
        old, new = old.strip(), new.strip()
        if not old or not new:
            raise ValueError(f"{pair!r} is not OLD=NEW")
        if departments is not None and new not in departments:
            raise ValueError(f"{pair!r}: {new!r} is not a configured department ({', '.join(departments)})")
        mapping[old] = new
    return mapping


async def import_examples(
    db: Database,
    rows: Sequence[FileExample],
    *,
    departments: Collection[str],
    mapping: Mapping[str, str],
    origin: str,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Store a spreadsheet's rows as routing examples: a department is taken as written if it is
    configured, else through `mapping`, else the row is skipped (and counted in the report)."""
    report = ImportReport()
    examples = []
    for row in rows:
        department = row.department if row.department in departments else mapping.get(row.department)
        if department is None:
            report.unknown[row.department] += 1
            continue
        if department != row.department:
            report.mapped[row.department] += 1
        examples.append(
            RoutingExample(
                text=row.text,
                department=department,
                source=RoutingSource.IMPORT,
                digest=data.text_digest(row.text),
                origin=f"{origin}:{row.line}"[:255],
                created_at=row.at or now,
            )
        )
    async with db.transaction() as session:
        report.added = await data.add_routing_examples(session, examples=examples, progress=progress)
    report.already_there = len(examples) - report.added
    return report


__all__ = ["DepartmentLearner", "ImportReport", "import_examples", "parse_department_map"]
