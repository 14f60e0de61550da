"""The staff desk's protocol: what the router asks a staff channel (the Slack desk) to show.

Each item rides on an `OutboundMessage` to an inbox (a department's channel, the review or alerts
inbox) whose `reply_to` is the ticket's reference, the key of its thread. The router decides what
staff see (router/deskfeed.py); the staff channel only renders it, matching on these types.

In the outbox an item is stored as JSON with a "kind" (`to_json`, `from_json`); the layout is the
one rows were written with before these types existed, so rows queued by an older version still
send.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar


@dataclass(frozen=True)
class CardRequest:
    """The ticket's card, to be read from the store just before it is sent (so a card queued in the
    middle of a change shows the ticket as it ended up)."""

    kind: ClassVar[str] = "card"

    reference: str


@dataclass(frozen=True)
class Card:
    """The ticket's card: posted once per inbox (the channel remembers where), then updated in place
    whenever the ticket changes. After a reassignment the new inbox gets a new card."""

    kind: ClassVar[str] = "card"

    reference: str
    status: str
    status_name: str
    department: str | None
    department_name: str | None
    origin: str  # the citizen's channel
    language: str
    category: str | None
    text: str  # the citizen's first message
    photos: tuple[int, ...] = ()  # media ids
    photo_links: tuple[str, ...] = ()  # signed URLs of them, valid for a while
    contact: str = ""  # masked unless the department shows it in full
    due: str | None = None  # written in the city's time
    assignee: str | None = None
    sensitive: bool = False
    actions: tuple[str, ...] = ()  # of "claim", "resolve", "reassign": those that fit the status
    departments: tuple[tuple[str, str], ...] = ()  # (id, name): the reassign picker


@dataclass(frozen=True)
class ThreadLine:
    """A line in the ticket's thread: a later citizen message, a reply sent from elsewhere than the
    thread, an escalation (mentioning the department's lead), a failed delivery."""

    kind: ClassVar[str] = "thread"

    reference: str
    author: str  # "citizen", "city", "staff" or "system"
    text: str
    author_name: str | None = None
    photos: tuple[int, ...] = ()
    mention: str | None = None  # a user to notify


@dataclass(frozen=True)
class DeliveryMark:
    """Whether a staff member's reply from the thread reached the citizen."""

    kind: ClassVar[str] = "mark"

    reference: str
    source: str  # the provider's id of the staff message
    delivered: bool
    detail: str = ""


@dataclass(frozen=True)
class Suggestion:
    entry: str
    score: float
    answer: str | None


@dataclass(frozen=True)
class ReviewPost:
    """An item of the same-day review queue, posted to the review inbox."""

    kind: ClassVar[str] = "review"

    reference: str
    question: str
    language: str | None = None
    due: str | None = None
    suggestions: tuple[Suggestion, ...] = ()


@dataclass(frozen=True)
class Alert:
    """For administrators, posted to the alerts inbox: a delivery that failed for good, a broken FAQ
    edit."""

    kind: ClassVar[str] = "alert"

    text: str


DeskItem = CardRequest | Card | ThreadLine | DeliveryMark | ReviewPost | Alert

# What a stored item's "kind" is read as (a card request is a "card" without its content).
_KINDS: dict[str, type[Any]] = {cls.kind: cls for cls in (Card, ThreadLine, DeliveryMark, ReviewPost, Alert)}


def to_json(item: DeskItem) -> dict[str, Any]:
    return {"kind": item.kind, **asdict(item)}


def from_json(raw: dict[str, Any]) -> DeskItem:
    """An item as stored in the outbox. Unknown keys are ignored; a card without its content is a
    request for it. Raises ValueError for an unknown kind or a missing field."""
    kind = raw.get("kind")
    if kind == "card" and "status" not in raw:
        return CardRequest(reference=str(raw["reference"]))
    cls = _KINDS.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown desk item kind {kind!r}")
    values = {f.name: raw[f.name] for f in fields(cls) if f.name in raw}
    for name in ("photos", "photo_links", "actions"):
        if name in values:
            values[name] = tuple(values[name] or ())
    if cls is Card:
        values["departments"] = tuple(tuple(pair) for pair in values.get("departments") or ())
    if cls is ReviewPost:
        values["suggestions"] = tuple(Suggestion(**s) for s in values.get("suggestions") or ())
    try:
        return cls(**values)  # type: ignore[no-any-return]
    except TypeError as exc:
        raise ValueError(f"a desk {kind} item is incomplete: {exc}") from None
