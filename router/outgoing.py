"""What the city sends: a message to a citizen becomes a stored message and an outbox row in the
caller's transaction; the dispatcher delivers it later (router/delivery.py: what happens around
that)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from channels.base import Button, OutboundMessage
from store import Contact, Direction, Message, Session, Ticket, data


async def send_to_citizen(
    session: Session,
    contact: Contact,
    text: str,
    *,
    ticket: Ticket | None,
    author: str,
    now: datetime,
    author_name: str | None = None,
    buttons: Sequence[Button] = (),
    reply_to: str | None = None,
    desk_source: str | None = None,
    notice: str | None = None,
    variables: dict[str, str] | None = None,
) -> Message:
    """Store an outgoing message and queue it on the contact's channel, in the caller's transaction.
    `reply_to` answers a provider's message in place (on X: a public reply to that post);
    `desk_source` is the staff message in the desk this reply came from (its delivery is marked
    there); `notice` and `variables` say which notice `text` is and what filled it (the ticket's
    reference is always among them)."""
    message = await data.add_message(
        session,
        message=Message(
            ticket_id=ticket.id if ticket else None,
            contact_id=data.id_of(contact),
            direction=Direction.OUT,
            channel=contact.channel,
            author=author,
            author_name=author_name,
            text=text,
            buttons=[{"label": b.label, "value": b.value} for b in buttons],
            language=ticket.language if ticket else contact.language,
            reply_to=reply_to,
            raw={"desk_source": desk_source} if desk_source else None,
            created_at=now,
        ),
        tracked=False,
    )
    key = f"msg-{message.id}"
    outgoing = OutboundMessage(
        channel=contact.channel,
        recipient=contact.address,
        text=text,
        idempotency_key=key,
        buttons=tuple(buttons),
        reply_to=reply_to,
        notice=notice,
        variables={**(variables or {}), "reference": ticket.reference} if ticket else variables,
    )
    await data.queue_outgoing(
        session,
        payload=outgoing.to_payload(),
        ticket_id=ticket.id if ticket else None,
        message_id=message.id,
        now=now,
    )
    return message
