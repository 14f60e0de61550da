"""An in-memory channel, shipped as product code so a whole-bot test reads "push a message in,
pop the replies out" (and so can an operator's smoke test)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from typing import ClassVar

from channels.base import (
    Attachment,
    Channel,
    Command,
    FetchedMedia,
    InboundMessage,
    OutboundMessage,
    PermanentSendError,
    RateLimit,
    Receipt,
    SendResult,
    TransientSendError,
)


class MemoryChannel(Channel):
    name: ClassVar[str] = "memory"
    supports_buttons: ClassVar[bool] = True
    fetches_media: ClassVar[bool] = True
    # No `find_sent`: what it "sent" lives in this process's memory and dies with it, so after a
    # restart there is nobody to ask, and sending again gives the new process its only copy.
    can_find_sent: ClassVar[bool] = False

    def __init__(self, rate_limit: RateLimit | None = None) -> None:
        super().__init__(rate_limit)
        self._ids = itertools.count(1)
        self._outbox: asyncio.Queue[OutboundMessage] = asyncio.Queue()
        self.sent: list[OutboundMessage] = []
        # Failures to play, in order, before sends succeed again: "transient" or "permanent".
        self.failures: list[str] = []
        self.route: str | None = None  # the way each send "went", for doors that have several
        self.retry_after = 0.01  # what a transient failure asks for
        # Files the "provider" holds, by URL, and failures to play when fetching them (as above).
        self.files: dict[str, tuple[bytes, str]] = {}
        self.fetch_failures: list[str] = []

    async def push(
        self,
        text: str,
        *,
        sender: str = "citizen-1",
        message_id: str | None = None,
        language_hint: str | None = None,
        received_at: datetime | None = None,
        attachments: tuple[Attachment, ...] = (),
        command: Command | None = None,
        public: bool = False,
        reply_to: str | None = None,
        reference: str | None = None,
        answer_window_seconds: float | None = None,
        department: str | None = None,
    ) -> Receipt:
        """Deliver a citizen's message as a provider would (give `message_id` to replay one)."""
        message = InboundMessage(
            channel=self.name,
            sender=sender,
            text=text,
            provider_message_id=message_id or f"mem-{next(self._ids)}",
            received_at=received_at or datetime.now(UTC),
            language_hint=language_hint,
            attachments=attachments,
            command=command,
            public=public,
            reply_to=reply_to,
            reference=reference,
            answer_window_seconds=answer_window_seconds,
            department=department,
        )
        return await self.inbound(message)

    async def pop(self, timeout: float = 5.0) -> OutboundMessage:
        """The next message the bot sent; raises TimeoutError when none comes in time."""
        async with asyncio.timeout(timeout):
            return await self._outbox.get()

    def pending(self) -> int:
        return self._outbox.qsize()

    async def send(self, message: OutboundMessage) -> SendResult:
        if self.failures:
            kind = self.failures.pop(0)
            if kind == "permanent":
                raise PermanentSendError("the recipient cannot be reached")
            raise TransientSendError("the provider is down", retry_after=self.retry_after)
        self.sent.append(message)
        self._outbox.put_nowait(message)
        return SendResult(provider_message_id=f"out-{len(self.sent)}", route=self.route)

    def send_cost(self, message: OutboundMessage) -> int:
        return 1 + len(message.text) // 1000  # a stand-in for SMS segments: long texts cost more

    async def fetch_media(self, attachment: Attachment) -> FetchedMedia:
        if self.fetch_failures:
            kind = self.fetch_failures.pop(0)
            if kind == "permanent":
                raise PermanentSendError("the file is gone")
            raise TransientSendError("the provider is down")
        if attachment.url not in self.files:
            raise PermanentSendError(f"no file at {attachment.url}")
        data, content_type = self.files[attachment.url]
        return FetchedMedia(data=data, content_type=content_type)
