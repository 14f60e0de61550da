"""Texts kept for a citizen's next skill answer: notices the city chose not to push through the paid
Event API, and texts an answer or a callback could not deliver.

They live in the host's memory (so any instance shows them) under a `citizen:` name, which the
retention purge forgets with the rest of what a citizen wrote and was told.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from channels.base import CITIZEN_MEMORY, Button, ChannelHost, OutboundMessage

CHANNEL = "kakao"


@dataclass(frozen=True)
class Shown:
    """A text to show, with its buttons."""

    text: str
    buttons: tuple[Button, ...] = ()

    @classmethod
    def of(cls, message: OutboundMessage) -> Shown:
        return cls(message.text, message.buttons)

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "buttons": [[b.label, b.value] for b in self.buttons]}

    @classmethod
    def from_json(cls, item: Any) -> Shown | None:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            return None
        buttons = tuple(Button(str(b[0]), str(b[1])) for b in item.get("buttons", []) if len(b) == 2)
        return cls(item["text"], buttons)


def user_digest(user_id: str) -> str:
    """The citizen in a memory's name: a botUserKey's digest (names are at most 255 characters)."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:40]


def memory_name(kind: str, user_id: str) -> str:
    return f"{CITIZEN_MEMORY}{kind}:{user_digest(user_id)}"


class Held:
    """A citizen's held texts, read and written through the host's memory."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()  # one read-modify-write at a time in this process

    async def add(self, host: ChannelHost, user_id: str, items: list[Shown]) -> None:
        if not items:
            return
        async with self._lock:
            kept = await self._read(host, user_id)
            value = json.dumps([i.to_json() for i in kept + items], ensure_ascii=False)
            await host.remember(CHANNEL, memory_name("held", user_id), value)

    async def take(self, host: ChannelHost, user_id: str) -> list[Shown]:
        """The held texts, forgotten once read (the caller shows them or holds them again)."""
        async with self._lock:
            kept = await self._read(host, user_id)
            if kept:
                await host.remember(CHANNEL, memory_name("held", user_id), "[]")
        return kept

    @staticmethod
    async def _read(host: ChannelHost, user_id: str) -> list[Shown]:
        value = await host.recall(CHANNEL, memory_name("held", user_id))
        try:
            items = json.loads(value) if value else []
        except ValueError:
            items = []
        shown = [Shown.from_json(item) for item in items] if isinstance(items, list) else []
        return [s for s in shown if s is not None]
