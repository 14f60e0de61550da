"""An in-memory channel, shipped as product code so a whole-bot test reads "push a message in,
pop the replies out" (and so can an operator's smoke test)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from typing import ClassVar

from channels.base import (
    Channel,
    InboundMessage,
    OutboundMessage,
    PermanentSendError,
    Receipt,
    SendResult,
    TransientSendError,
)


class MemoryChannel(Channel):
    name: ClassVar[str] = "memory"
    supports_buttons: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)
        self._outbox: asyncio.Queue[OutboundMessage] = asyncio.Queue()
        self.sent: list[OutboundMessage] = []
        # Failures to play, in order, before sends succeed again: "transient" or "permanent".
        self.failures: list[str] = []

    async def push(
        self,
        text: str,
        *,
        sender: str = "citizen-1",
        message_id: str | None = None,
        language_hint: str | None = None,
        received_at: datetime | None = None,
    ) -> Receipt:
        """Deliver a citizen's message as a provider would (give `message_id` to replay one)."""
        message = InboundMessage(
            channel=self.name,
            sender=sender,
            text=text,
            provider_message_id=message_id or f"mem-{next(self._ids)}",
            received_at=received_at or datetime.now(UTC),
            language_hint=language_hint,
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
            raise TransientSendError("the provider is down", retry_after=0.01)
        self.sent.append(message)
        self._outbox.put_nowait(message)
        return SendResult(provider_message_id=f"out-{len(self.sent)}")
