"""The terminal chat: `python bot.py chat` talks to the bot as a citizen would."""

from __future__ import annotations

import asyncio
import getpass
import sys
import uuid
from datetime import UTC, datetime
from typing import ClassVar, TextIO

from channels.base import (
    Channel,
    InboundMessage,
    OutboundMessage,
    Receipt,
    SendResult,
    TransientSendError,
    buttons_as_text,
)


class TerminalChannel(Channel):
    name: ClassVar[str] = "terminal"

    def __init__(self, *, user: str | None = None, output: TextIO | None = None) -> None:
        super().__init__()
        self.address = f"terminal-{user or getpass.getuser()}"
        self._output = output or sys.stdout

    async def say(self, text: str) -> Receipt:
        """One line the citizen typed."""
        return await self.inbound(
            InboundMessage(
                channel=self.name,
                sender=self.address,
                text=text,
                provider_message_id=uuid.uuid4().hex,
                received_at=datetime.now(UTC),
            )
        )

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.recipient == self.address:
            text = buttons_as_text(message.text, message.buttons)
            self._output.write("\n" + "\n".join("city> " + line for line in text.splitlines()) + "\n")
            self._output.flush()
            return SendResult()
        # Another terminal user's message: it waits for that user's own `chat` session.
        raise TransientSendError(f"{message.recipient} is not at this terminal", retry_after=60)

    async def read_lines(self, input_stream: TextIO | None = None) -> None:
        """Read what the citizen types until end of input."""
        stream = input_stream or sys.stdin
        while True:
            line = await asyncio.to_thread(stream.readline)
            if not line:
                return
            if line.strip():
                await self.say(line.strip())
