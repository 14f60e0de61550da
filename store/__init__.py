"""The store: SQLModel tables, async sessions, migrations and keyword-only data functions.

It knows nothing of routers, channels or the knowledge base: every decision is made elsewhere
and handed in as plain values.
"""

from store.config import StoreConfig
from store.data import AlreadyStored
from store.db import Database, Session, open_database
from store.models import (
    OPEN_STATUSES,
    ChannelCursor,
    Contact,
    Direction,
    FaqFit,
    FaqLabel,
    Media,
    MediaStatus,
    Message,
    Outbox,
    OutboxStatus,
    RoutingExample,
    RoutingSource,
    Ticket,
    TicketEvent,
    TicketStatus,
    utcnow,
)

__all__ = [
    "OPEN_STATUSES",
    "AlreadyStored",
    "ChannelCursor",
    "Contact",
    "Database",
    "Direction",
    "FaqFit",
    "FaqLabel",
    "Media",
    "MediaStatus",
    "Message",
    "Outbox",
    "OutboxStatus",
    "RoutingExample",
    "RoutingSource",
    "Session",
    "StoreConfig",
    "Ticket",
    "TicketEvent",
    "TicketStatus",
    "open_database",
    "utcnow",
]
