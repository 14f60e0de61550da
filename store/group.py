"""Group commit: units of work that arrive together share one transaction.

A burst of webhooks is thousands of small transactions, and on SQLite every one of them queues for
the single writer. Here each unit of work joins the batch being gathered: while one batch's
transaction runs, the units that arrive wait, and the next batch takes them all at once. A quiet
moment adds no delay (a lone unit is a batch of one), and a busy one pays one BEGIN and one COMMIT
for many units.

Each unit runs in a SAVEPOINT of its own, so a unit that fails is undone alone and its caller gets
the exception; its neighbours go on. A caller's result is given only after the batch committed (so
a webhook is acknowledged only once its message is stored). When the COMMIT itself fails, every
unit of the batch gets that error: none of them is stored, and each caller can say "try again".

Units with the same key run in the order they came, in one lane. On PostgreSQL several lanes run
side by side, each on a connection of its own; on SQLite there is one (one writer at a time).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from store.db import Database

log = logging.getLogger("store.group")

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[T]]


@dataclass
class _Unit(Generic[T]):
    work: Work[T]
    future: asyncio.Future[T]


@dataclass
class _Lane:
    waiting: deque[_Unit[Any]] = field(default_factory=deque)
    draining: asyncio.Task[None] | None = None


class GroupCommit:
    """Runs units of work in shared transactions; `await run(work, key=...)` returns once committed."""

    def __init__(self, db: Database, *, lanes: int = 1, max_batch: int = 200) -> None:
        self.db = db
        self.max_batch = max_batch
        self._lanes = [_Lane() for _ in range(max(1, lanes))]
        # How many batches and units so far (bench/burst.py reports them).
        self.batches = 0
        self.units = 0

    async def run(self, work: Work[T], *, key: str = "") -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        lane = self._lanes[zlib.crc32(key.encode()) % len(self._lanes)]
        lane.waiting.append(_Unit(work, future))
        if lane.draining is None:
            lane.draining = asyncio.create_task(self._drain(lane), name="group-commit")
        return await future

    async def _drain(self, lane: _Lane) -> None:
        try:
            while lane.waiting:
                batch = [lane.waiting.popleft() for _ in range(min(self.max_batch, len(lane.waiting)))]
                await self._commit(batch)
        except BaseException as exc:  # cancelled at shutdown: nobody waits forever
            for unit in [*lane.waiting]:
                _settle(unit, exc)
            lane.waiting.clear()
            raise
        finally:
            lane.draining = None

    async def _commit(self, batch: list[_Unit[Any]]) -> None:
        results: list[tuple[_Unit[Any], Any, BaseException | None]] = []
        try:
            async with self.db.transaction() as session:
                for unit in batch:
                    try:
                        async with session.begin_nested():
                            results.append((unit, await unit.work(session), None))
                    except Exception as exc:  # this unit alone is undone
                        results.append((unit, None, exc))
        except Exception as exc:
            log.warning("group commit: a batch of %d could not be committed: %s", len(batch), exc)
            for unit in batch:
                _settle(unit, exc)
            return
        except BaseException as exc:  # cancelled (a shutdown): nobody waits forever
            for unit in batch:
                _settle(unit, exc)
            raise
        self.batches += 1
        self.units += len(batch)
        for unit, result, error in results:
            if error is not None:
                _settle(unit, error)
            elif not unit.future.done():
                unit.future.set_result(result)


def _settle(unit: _Unit[Any], exc: BaseException) -> None:
    if unit.future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        unit.future.cancel()
    else:
        unit.future.set_exception(exc)


def writer_lanes(db: Database) -> int:
    """How many lanes intake gets: one on SQLite; on PostgreSQL the pool's connections but two
    (kept for the dispatcher and for reads)."""
    if db.dialect != "postgresql":
        return 1
    size = getattr(db.engine.pool, "size", None)
    return max(1, (size() if callable(size) else 5) - 2)
