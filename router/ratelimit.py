"""Spacing sends so a provider's limits are kept: overall per channel and per recipient."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

_MAX_KEYS = 10_000


class Pacer:
    """At most `rate` calls a second for each key: each call waits for its own slot."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next: OrderedDict[str, float] = OrderedDict()

    async def wait(self, key: str = "") -> None:
        now = time.monotonic()
        slot = max(now, self._next.get(key, 0.0))
        self._next[key] = slot + self.interval
        self._next.move_to_end(key)
        while len(self._next) > _MAX_KEYS:
            self._next.popitem(last=False)
        if slot > now:
            await asyncio.sleep(slot - now)
