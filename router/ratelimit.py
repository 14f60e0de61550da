"""Spacing sends so a provider's limits are kept: overall per channel and per recipient."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

_MAX_KEYS = 10_000


class Pacer:
    """At most `rate` units a second for each key: each call waits for its own slot, and a call
    that costs n units (an SMS of n segments) keeps the next caller waiting n intervals."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next: OrderedDict[str, float] = OrderedDict()

    async def wait(self, key: str = "", *, cost: int = 1) -> None:
        await wait_all([(self, key)], cost=cost)

    def hold(self, seconds: float, key: str = "") -> None:
        """Nobody goes for `seconds` (the provider said Retry-After)."""
        until = time.monotonic() + seconds
        if until > self._next.get(key, 0.0):
            self._set(key, until)

    def _set(self, key: str, at: float) -> None:
        self._next[key] = at
        self._next.move_to_end(key)
        while len(self._next) > _MAX_KEYS:
            self._next.popitem(last=False)


async def wait_all(pacers: list[tuple[Pacer, str]], *, cost: int = 1) -> None:
    """Wait until every (pacer, key) has a slot free, and take the same slot in all of them: waiting
    on one pacer, then another, would let two sends to one key come closer than its interval."""
    if not pacers:
        return
    now = time.monotonic()
    slot = max(now, *(pacer._next.get(key, 0.0) for pacer, key in pacers))
    for pacer, key in pacers:
        pacer._set(key, slot + pacer.interval * cost)
    if slot > now:
        await asyncio.sleep(slot - now)
