"""Serve an aiohttp app on the configured address until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from server.config import ServerConfig

log = logging.getLogger("bot")


async def listen_until_stopped(app: web.Application, config: ServerConfig) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    local = "localhost" if config.host in ("0.0.0.0", "::", "") else config.host
    log.info(
        "serving on %s:%s: open http://%s:%s/chat (providers call %s)",
        config.host,
        config.port,
        local,
        config.port,
        config.public_url,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("stopping")
    await runner.cleanup()
