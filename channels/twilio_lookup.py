"""Whether a send the process died in reached Twilio, asked of Twilio's message list (`find_sent`).

We look in Twilio's list of messages to the recipient from our sender for those created since the
attempt began (less `_CLOCK_SKEW`) whose body is exactly what `send` would send, part by part in
order. `TwilioChannel.find_sent` makes of what is found its answer: every part there, the first
one's sid, as `send` returns it; only the first few, those are remembered, so the `send` that
follows sends just the rest.

A text is matched, not a key (the list shows nothing of ours but the text), so a body Twilio stores
otherwise (a Messaging Service's link shortening or Smart Encoding may rewrite it; body redaction
blanks it) is not found, and the message goes again as before. A message of media alone is matched
by its empty body.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from channels.base import as_utc

# A message Twilio took after `since` may show a date_created a little before it (Twilio's clock
# against ours; RFC 2822 dates in whole seconds). Short on purpose: the same text sent to the same
# number by the row before, within this margin, would pass for this one.
_CLOCK_SKEW = timedelta(seconds=10)
_FIND_PAGE = 100  # messages a page when listing what went to one number
_FIND_LIMIT = 1000  # ... and at most this many, newest first


class SenderSettings(Protocol):
    """Who sends for us, as a Twilio channel's config section says (any TwilioSettings)."""

    @property
    def from_number(self) -> str: ...
    @property
    def messaging_service_sid(self) -> str: ...


class _Listed(NamedTuple):
    """A message in Twilio's list, as find_sent compares it."""

    at: datetime  # date_created, in whole seconds
    order: int  # within one second: Twilio lists newest first, so the later listed, the older
    body: str
    sid: str


def _earliest(since: datetime) -> datetime:
    """The earliest date_created a message of an attempt begun at `since` may show."""
    return as_utc(since) - _CLOCK_SKEW


async def sent_to(client: Any, config: SenderSettings, recipient: str, since: datetime) -> list[_Listed]:
    """The messages we sent to `recipient` that Twilio created since the attempt began (less
    `_CLOCK_SKEW`), listed with `client` (a twilio.rest.Client). No DateSent filter: a message
    still queued has no date_sent yet and could be left out by one; so the recipient's messages are
    read newest first, at most `_FIND_LIMIT`, and compared here. The caller bounds the time it takes
    and turns Twilio's errors into SendErrors."""
    after = _earliest(since)
    by_number = bool(config.from_number)
    sender = {"from_": config.from_number} if by_number else {}  # a service's sender varies
    found: list[_Listed] = []
    records = await client.messages.stream_async(
        to=recipient, limit=_FIND_LIMIT, page_size=_FIND_PAGE, **sender
    )
    listed = 0
    async for record in records:
        listed += 1
        ours = (
            record.from_ == config.from_number
            if by_number
            else record.messaging_service_sid == config.messaging_service_sid
        )
        created = record.date_created
        if (
            ours
            and record.to == recipient
            and str(record.direction or "").startswith("outbound")
            and isinstance(created, datetime)
            and created >= after
        ):
            found.append(_Listed(created, -listed, record.body or "", str(record.sid)))
    return found


def matching(
    listed: Sequence[_Listed], bodies: Sequence[str], since: datetime, taken: Collection[str] = ()
) -> list[str]:
    """The sids of the messages in `listed` whose bodies are `bodies` in order, each created no
    earlier than the one before (the first since the attempt began, less `_CLOCK_SKEW`), none of
    them in `taken`: as many as are found in a row from the first body on."""
    after = _earliest(since)
    used = set(taken)
    found: list[str] = []
    # Oldest first: the parts were created one after another (and may repeat a text).
    pool = sorted(listed)
    for body in bodies:
        match = next((m for m in pool if m.at >= after and m.body == body and m.sid not in used), None)
        if match is None:
            break
        after = match.at
        used.add(match.sid)
        found.append(match.sid)
    return found
