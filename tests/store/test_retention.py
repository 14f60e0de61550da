"""The retention purge on SQLite and PostgreSQL: what a citizen wrote and where from goes, the counts,
times, departments and ratings stay, and open tickets are never touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from store import (
    Contact,
    Database,
    Direction,
    FaqLabel,
    Media,
    MediaStatus,
    Message,
    Outbox,
    OutboxStatus,
    RoutingExample,
    RoutingSource,
    Ticket,
    TicketStatus,
    data,
    retention,
)

LONG_AGO = datetime(2023, 3, 2, 1, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
BEFORE = NOW - timedelta(days=1095)


async def _ticket(
    db: Database,
    address: str,
    *,
    status: TicketStatus,
    at: datetime,
    closed: datetime | None = None,
) -> tuple[int, int]:
    """A contact's ticket with a citizen message (a photo, a location), the bot's answer, its
    delivered outbox row, a desk card, a staff reply event and a routing example."""
    async with db.transaction() as s:
        contact = await data.get_or_create_contact(s, channel="sms", address=address, display_name="Kim")
        contact.created_at = at
        ticket = await data.add_ticket(
            s,
            ticket=Ticket(
                reference=await data.next_reference(s, year=at.year),
                contact_id=contact.id or 0,
                channel="sms",
                language="ko",
                department="environment",
                status=status,
                rating=4,
                rating_comment=f"{address} thanks, my flat is 302",
                created_at=at,
                closed_at=closed,
            ),
        )
        ticket_id, contact_id = ticket.id or 0, contact.id or 0
        asked = await data.add_message(
            s,
            message=Message(
                ticket_id=ticket_id,
                contact_id=contact_id,
                direction=Direction.IN,
                channel="sms",
                provider_message_id=f"SM{address}",
                author="citizen",
                author_name="Kim",
                text="Rubbish dumped outside 12 Sejong-daero, call me on " + address,
                attachments=[{"url": "https://api.twilio.com/media/ME1", "content_type": "image/jpeg"}],
                location={"latitude": 37.56, "longitude": 126.97},
                raw={"From": address, "Body": "Rubbish dumped"},
                created_at=at,
            ),
        )
        await data.add_media(
            s,
            media=Media(
                message_id=asked.id or 0,
                channel="sms",
                source_url="https://api.twilio.com/media/ME1",
                status=MediaStatus.STORED,
                size=3,
                data=b"jpg",
                created_at=at,
            ),
        )
        answer = await data.add_message(
            s,
            message=Message(
                ticket_id=ticket_id,
                contact_id=contact_id,
                direction=Direction.OUT,
                channel="sms",
                author="staff:U1",
                author_name="Park",
                text="Mr Kim, the rubbish at 12 Sejong-daero is gone.",
                created_at=at,
            ),
        )
        for key, channel, recipient, message_id in (
            (f"notice-{address}", "sms", address, answer.id),
            (f"card-{address}", "slack", "#dept-environment", None),
        ):
            await data.add_outbox(
                s,
                row=Outbox(
                    idempotency_key=key,
                    ticket_id=ticket_id,
                    message_id=message_id,
                    channel=channel,
                    recipient=recipient,
                    payload={"text": "Rubbish dumped outside 12 Sejong-daero"},
                    status=OutboxStatus.SENT,
                    created_at=at,
                ),
            )
        await data.add_event(
            s, ticket_id=ticket_id, actor="citizen", actor_name="Kim", kind="created", at=at, detail={}
        )
        await data.add_event(
            s,
            ticket_id=ticket_id,
            actor="staff:U1",
            actor_name="Park",
            kind="reply",
            at=at,
            detail={"text": "Mr Kim, the rubbish is gone.", "department": "environment"},
        )
        for kind, text, variant in (
            ("out_of_scope", "Rubbish dumped outside 12 Sejong-daero, call me on " + address, False),
            ("positive", "where do I report dumped rubbish", True),
        ):
            await data.add_faq_label(
                s,
                label=FaqLabel(
                    kind=kind,
                    entry_id="illegal-dumping-report",
                    text=text,
                    language="en",
                    variant=variant,
                    ticket_id=ticket_id,
                    actor="staff:U1",
                    created_at=at,
                ),
            )
        await data.set_ticket_example(
            s,
            ticket_id=ticket_id,
            text="Rubbish dumped outside 12 Sejong-daero",
            department="environment",
            at=at,
        )
    return contact_id, ticket_id


async def _loose_message(db: Database, address: str, *, at: datetime) -> int:
    """A STOP: stored without a ticket."""
    async with db.transaction() as s:
        contact = await data.get_or_create_contact(s, channel="sms", address=address)
        contact.created_at = at
        message = await data.add_message(
            s,
            message=Message(
                contact_id=contact.id or 0,
                direction=Direction.IN,
                channel="sms",
                provider_message_id=f"SM-stop-{address}",
                author="citizen",
                text="STOP",
                raw={"From": address},
                created_at=at,
            ),
        )
        return message.id or 0


async def _purge(db: Database) -> retention.Purged:
    return await retention.purge_expired(db, before=BEFORE, now=NOW, batch=2)


async def test_an_old_closed_ticket_keeps_its_statistics_and_loses_what_the_citizen_wrote(
    database: Database,
) -> None:
    old_contact, old_ticket = await _ticket(
        database,
        "+821011110000",
        status=TicketStatus.CLOSED,
        at=LONG_AGO,
        closed=LONG_AGO + timedelta(days=4),
    )
    async with database.transaction() as s:
        await data.add_routing_examples(
            s,
            examples=[
                RoutingExample(
                    text="imported complaint",
                    department="environment",
                    source=RoutingSource.IMPORT,
                    created_at=LONG_AGO,
                )
            ],
        )

    purged = await _purge(database)

    assert purged == retention.Purged(tickets=1, messages=2, contacts=1)
    async with database.session() as s:
        ticket = await data.get_ticket_by_id(s, ticket_id=old_ticket)
        assert ticket is not None
        assert ticket.purged_at == NOW and ticket.rating_comment is None
        # What the statistics need stays.
        assert (ticket.rating, ticket.department, ticket.status, ticket.channel, ticket.language) == (
            4,
            "environment",
            "closed",
            "sms",
            "ko",
        )
        assert ticket.created_at == LONG_AGO
        messages = await data.ticket_messages(s, ticket_id=old_ticket)
        assert [(m.text, m.attachments, m.location, m.raw, m.purged_at) for m in messages] == [
            ("", [], None, None, NOW),
            ("", [], None, None, NOW),
        ]
        # The citizen's name goes; the staff member's stays with the audit trail.
        assert [m.author_name for m in messages] == [None, "Park"]
        assert [(m.provider_message_id, m.reply_to) for m in messages] == [(None, None), (None, None)]
        (media,) = await data.message_media(s, message_id=messages[0].id or 0)
        assert (media.data, media.source_url, media.size, media.status) == (None, "", 3, "purged")
        rows = (await s.exec(select(Outbox).order_by(Outbox.id))).all()
        assert [(r.recipient, r.payload, r.status) for r in rows] == [("", {}, "sent"), ("", {}, "sent")]
        events = await data.ticket_events(s, ticket_id=old_ticket)
        assert [(e.kind, e.actor, e.actor_name, e.detail) for e in events] == [
            ("created", "citizen", None, {}),
            ("reply", "staff:U1", "Park", {"department": "environment"}),
        ]
        examples = await data.routing_examples(s)
        assert [(e.text, e.source) for e in examples] == [("imported complaint", "import")]
        # A label's text goes with the ticket; a learned question stays, no longer tied to it.
        labels = await data.faq_labels(s)
        assert [(x.kind, x.text, x.ticket_id) for x in labels] == [
            ("positive", "where do I report dumped rubbish", None)
        ]
        contact = await s.get(Contact, old_contact)
        assert contact is not None
        assert (contact.address, contact.display_name, contact.purged_at) == (
            f"purged:{old_contact}",
            None,
            NOW,
        )
    assert await _purge(database) == retention.Purged()  # nothing twice


async def test_open_and_recent_tickets_and_their_contacts_are_kept(database: Database) -> None:
    # Open for years (still owed an answer), closed recently, and a contact with one of each.
    _, open_ticket = await _ticket(database, "+821022220000", status=TicketStatus.FORWARDED, at=LONG_AGO)
    _, recent = await _ticket(
        database,
        "+821033330000",
        status=TicketStatus.CLOSED,
        at=NOW - timedelta(days=30),
        closed=NOW - timedelta(days=20),
    )
    both, old_of_both = await _ticket(
        database, "+821044440000", status=TicketStatus.CLOSED, at=LONG_AGO, closed=LONG_AGO
    )
    async with database.transaction() as s:
        await data.add_ticket(
            s,
            ticket=Ticket(
                reference="2026-009999",
                contact_id=both,
                channel="sms",
                language="ko",
                status=TicketStatus.IN_PROGRESS,
                created_at=NOW - timedelta(days=2),
            ),
        )

    assert await _purge(database) == retention.Purged(tickets=1, messages=2, contacts=0)
    async with database.session() as s:
        for kept in (open_ticket, recent):
            ticket = await data.get_ticket_by_id(s, ticket_id=kept)
            assert ticket is not None and ticket.purged_at is None and ticket.rating_comment
            assert all(m.text and m.purged_at is None for m in await data.ticket_messages(s, ticket_id=kept))
        purged = await data.get_ticket_by_id(s, ticket_id=old_of_both)
        assert purged is not None and purged.purged_at == NOW
        contacts = (await s.exec(select(Contact).order_by(Contact.id))).all()
        assert [c.address for c in contacts] == ["+821022220000", "+821033330000", "+821044440000"]
        assert len(await data.routing_examples(s)) == 2


async def test_messages_without_a_ticket_are_purged_by_their_own_age(database: Database) -> None:
    old = await _loose_message(database, "+821055550000", at=LONG_AGO)
    recent = await _loose_message(database, "+821066660000", at=NOW - timedelta(days=3))

    assert await _purge(database) == retention.Purged(tickets=0, messages=1, contacts=1)
    async with database.session() as s:
        gone, kept = await data.get_message(s, message_id=old), await data.get_message(s, message_id=recent)
        assert gone is not None and (gone.text, gone.raw, gone.purged_at) == ("", None, NOW)
        assert kept is not None and (kept.text, kept.purged_at) == ("STOP", None)
        # The citizen writing again is a new contact: nothing links them to the purged one.
        assert await data.find_contact(s, channel="sms", address="+821055550000") is None


async def test_batches_go_on_until_everything_due_is_purged(database: Database) -> None:
    for n in range(5):
        await _ticket(database, f"+82107777000{n}", status=TicketStatus.CLOSED, at=LONG_AGO, closed=LONG_AGO)

    assert await _purge(database) == retention.Purged(tickets=5, messages=10, contacts=5)  # batches of 2


async def test_a_contact_writing_in_is_skipped_and_purged_once_it_is_done(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite runs one writer at a time: there is no concurrent intake to skip")
    await _loose_message(database, "+821088880000", at=LONG_AGO)
    async with database.transaction() as intake:
        # An intake under way holds the contact it is writing to.
        await data.get_or_create_contact(intake, channel="sms", address="+821088880000")
        assert await _purge(database) == retention.Purged(tickets=0, messages=1, contacts=0)
    assert await _purge(database) == retention.Purged(tickets=0, messages=0, contacts=1)


async def test_a_purge_asked_to_stop_ends_after_its_current_batch(database: Database) -> None:
    for n in range(5):
        await _ticket(database, f"+82109999000{n}", status=TicketStatus.CLOSED, at=LONG_AGO, closed=LONG_AGO)
    answers = iter([True])  # one batch, then the bot is stopping

    stopped = await retention.purge_expired(
        database, before=BEFORE, now=NOW, batch=2, going_on=lambda: next(answers, False)
    )

    assert stopped == retention.Purged(tickets=2, messages=4, contacts=0)
    assert await _purge(database) == retention.Purged(tickets=3, messages=6, contacts=5)  # the rest, later
