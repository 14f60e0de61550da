"""Copying citizens' photos into the store: provider links expire, the ticket's evidence must not.

Intake queues one `Media` row per attachment in the message's own transaction; this fetcher claims
due rows (SKIP LOCKED with a lease, like the outbox), downloads each through its channel adapter
with the channel's credentials, and keeps the bytes. A provider that is down delays the copy; one
that says the file is gone, or a file over the size limit, marks it failed with an event on the ticket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from channels.base import Attachment, Channel, PermanentSendError, TransientSendError
from router.config import MediaConfig
from store import Database, Media, MediaStatus, data, utcnow

log = logging.getLogger("router.media")


class MediaFetcher:
    def __init__(
        self,
        *,
        db: Database,
        channels: Mapping[str, Channel],
        config: MediaConfig,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.channels = {name: ch for name, ch in channels.items() if ch.fetches_media}
        self.config = config
        self.clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                if await self.run_once():
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("media: the store is not answering; trying again")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.poll_seconds):  # see router/dispatcher.py
                    await self._wake.wait()

    async def run_once(self) -> int:
        """Fetch one batch of due attachments; returns how many were claimed."""
        if not self.channels:
            return 0
        async with self.db.transaction() as session:
            rows = await data.claim_media(
                session,
                channels=self.channels,
                now=self.clock(),
                lease=timedelta(seconds=self.config.lease_seconds),
                limit=self.config.batch,
            )
        async with asyncio.TaskGroup() as fetches:
            for row in rows:
                fetches.create_task(self._fetch(row))
        return len(rows)

    async def _fetch(self, row: Media) -> None:
        channel = self.channels[row.channel]
        attachment = Attachment(url=row.source_url, content_type=row.content_type, media_id=row.id)
        try:
            fetched = await channel.fetch_media(attachment)
            if len(fetched.data) > self.config.max_bytes:
                raise PermanentSendError(
                    f"{len(fetched.data)} bytes is over router.media.max_bytes ({self.config.max_bytes})"
                )
        except PermanentSendError as exc:
            await self._give_up(row, str(exc))
        except (TransientSendError, Exception) as exc:
            if not isinstance(exc, TransientSendError):
                log.exception("media: %s failed to fetch media %s", row.channel, row.id)
            await self._retry(row, f"{type(exc).__name__}: {exc}")
        else:
            async with self.db.transaction() as session:
                await data.finish_media(
                    session,
                    media_id=row.id or 0,
                    attempt=row.attempts,
                    status=MediaStatus.STORED,
                    data=fetched.data,
                    size=len(fetched.data),
                    content_type=fetched.content_type or row.content_type,
                    stored_at=self.clock(),
                    error=None,
                )

    async def _retry(self, row: Media, error: str) -> None:
        now = self.clock()
        if now - row.created_at > timedelta(hours=self.config.give_up_after_hours):
            await self._give_up(row, f"still failing after {self.config.give_up_after_hours} h: {error}")
            return
        backoff = min(self.config.backoff_max_seconds, self.config.backoff_seconds * 2 ** (row.attempts - 1))
        delay = backoff * random.uniform(0.5, 1.0)
        log.warning(
            "media: fetching %s from %s failed (%s); next try in %.0fs", row.id, row.channel, error, delay
        )
        async with self.db.transaction() as session:
            await data.finish_media(
                session,
                media_id=row.id or 0,
                attempt=row.attempts,
                next_attempt_at=now + timedelta(seconds=delay),
                error=error[:2000],
            )

    async def _give_up(self, row: Media, error: str) -> None:
        log.error("media: %s from %s could not be kept: %s", row.id, row.channel, error)
        async with self.db.transaction() as session:
            finished = await data.finish_media(
                session,
                media_id=row.id or 0,
                attempt=row.attempts,
                status=MediaStatus.FAILED,
                error=error[:2000],
            )
            message = await data.get_message(session, message_id=row.message_id)
            if finished and message is not None and message.ticket_id is not None:
                await data.add_event(
                    session,
                    ticket_id=message.ticket_id,
                    actor="system",
                    kind="media_failed",
                    at=self.clock(),
                    detail={"media": row.id, "channel": row.channel, "error": error[:500]},
                )
