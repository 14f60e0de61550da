"""Waiting in tests for what happens in the background (a dispatcher's send, a poller's round)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable


async def until(check: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait until `check()` is true; it may return an awaitable (a read of the store)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:g} s")
        await asyncio.sleep(0.02)
