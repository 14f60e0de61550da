"""What a pull channel (the web chat) shows a citizen: their messages and the city's delivered
replies, oldest first."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from channels.base import Button, ConversationItem
from store import Database, Direction, data


class Conversations:
    def __init__(self, db: Database, zone: ZoneInfo) -> None:
        self.db = db
        self.zone = zone

    async def of(self, channel: str, address: str) -> list[ConversationItem]:
        async with self.db.session() as session:
            contact = await data.find_contact(session, channel=channel, address=address)
            if contact is None:
                return []
            messages = await data.conversation(session, contact_id=data.id_of(contact))
        return [
            ConversationItem(
                id=f"m{m.id}",
                sender="citizen" if m.direction == Direction.IN else "city",
                text=m.text,
                at=m.created_at.astimezone(self.zone),
                buttons=tuple(Button(**b) for b in m.buttons),
            )
            for m in messages
        ]
