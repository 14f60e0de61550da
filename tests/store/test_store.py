"""The store on both SQLite and PostgreSQL: schema, uniqueness, references, outbox claims."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

from store import AlreadyStored, Database, Direction, Message, Outbox, OutboxStatus, Ticket, data

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


async def test_migrations_build_exactly_the_models(database: Database) -> None:
    async with database.engine.connect() as connection:
        diff = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata)
        )
    assert diff == []
    assert await database.current_revision() == "0008"


async def test_upgrade_twice_is_harmless(database: Database) -> None:
    await database.upgrade()
    assert await database.current_revision() == "0008"


async def _contact_and_ticket(db: Database, *, address: str = "+821012345678") -> tuple[int, int]:
    async with db.transaction() as s:
        contact = await data.get_or_create_contact(s, channel="sms", address=address)
        ticket = await data.add_ticket(
            s,
            ticket=Ticket(
                reference=await data.next_reference(s, year=2026),
                contact_id=contact.id or 0,
                channel="sms",
                language="ko",
                created_at=T0,
            ),
        )
        return contact.id or 0, ticket.id or 0


async def test_a_contact_is_one_row_per_channel_and_address(database: Database) -> None:
    async with database.transaction() as s:
        first = await data.get_or_create_contact(s, channel="sms", address="+8210")
        again = await data.get_or_create_contact(s, channel="sms", address="+8210")
        other = await data.get_or_create_contact(s, channel="telegram", address="+8210")
    assert first.id == again.id
    assert other.id != first.id


async def test_references_count_up_per_year(database: Database) -> None:
    async with database.transaction() as s:
        refs = [await data.next_reference(s, year=2026) for _ in range(3)]
        next_year = await data.next_reference(s, year=2027)
    assert refs == ["2026-000001", "2026-000002", "2026-000003"]
    assert next_year == "2027-000001"


async def test_concurrent_references_never_repeat(database: Database) -> None:
    async def one() -> str:
        async with database.transaction() as s:
            return await data.next_reference(s, year=2026)

    refs = await asyncio.gather(*(one() for _ in range(10)))
    assert sorted(refs) == [f"2026-{n:06d}" for n in range(1, 11)]


async def test_a_database_that_counted_in_the_row_goes_on_from_there(database: Database) -> None:
    # Before PostgreSQL counted in a sequence, it counted in the year's row (SQLite still does).
    async with database.transaction() as s:
        await s.exec(text("INSERT INTO ticketcounter (year, last) VALUES (2026, 41)"))  # type: ignore[call-overload]
    async with database.transaction() as s:
        assert await data.next_reference(s, year=2026) == "2026-000042"


async def test_a_reference_taken_by_an_intake_that_failed_is_not_given_again(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.transaction() as s:
            taken = await data.next_reference(s, year=2026)
            raise RuntimeError("the intake failed")
    async with database.transaction() as s:
        after = await data.next_reference(s, year=2026)
    # PostgreSQL skips the number (a sequence holds nothing while the intake runs); SQLite, which
    # counts in the caller's transaction, gives it again.
    assert after == ("2026-000002" if database.dialect == "postgresql" else taken)


async def test_an_inbound_provider_id_is_stored_once_per_channel(database: Database) -> None:
    contact_id, ticket_id = await _contact_and_ticket(database)

    def inbound(channel: str) -> Message:
        return Message(
            ticket_id=ticket_id,
            contact_id=contact_id,
            direction=Direction.IN,
            channel=channel,
            provider_message_id="SM123",
            author="citizen",
            text="hi",
        )

    async with database.transaction() as s:
        await data.add_message(s, message=inbound("sms"))
        await data.add_message(s, message=inbound("telegram"))  # another channel may reuse the id
    with pytest.raises(AlreadyStored, match="sms message SM123"):
        async with database.transaction() as s:
            await data.add_message(s, message=inbound("sms"))
    async with database.session() as s:
        found = await data.find_inbound(s, channel="sms", provider_message_id="SM123")
    assert found is not None and found.text == "hi"


async def test_times_come_back_aware_and_in_utc(database: Database) -> None:
    seoul_time = datetime(2026, 11, 23, 18, 30, tzinfo=UTC).astimezone(ZoneInfo("Asia/Seoul"))
    _, ticket_id = await _contact_and_ticket(database)
    async with database.transaction() as s:
        ticket = await data.get_ticket_by_id(s, ticket_id=ticket_id)
        assert ticket is not None
        ticket.due_at = seoul_time
    async with database.session() as s:
        again = await data.get_ticket_by_id(s, ticket_id=ticket_id)
    assert again is not None and again.due_at == seoul_time
    assert again.due_at.tzinfo is not None and again.due_at.utcoffset() == timedelta(0)


async def _queue(
    db: Database, ticket_id: int, key: str, *, at: datetime = T0, recipient: str = "+8210"
) -> int:
    async with db.transaction() as s:
        row = await data.add_outbox(
            s,
            row=Outbox(
                idempotency_key=key,
                ticket_id=ticket_id,
                channel="sms",
                recipient=recipient,
                payload={"text": key},
                next_attempt_at=at,
                created_at=at,
            ),
        )
        return row.id or 0


async def test_claims_take_due_rows_of_the_given_channels_only(database: Database) -> None:
    _, ticket_id = await _contact_and_ticket(database)
    due = await _queue(database, ticket_id, "due")
    await _queue(database, ticket_id, "later", at=T0 + timedelta(minutes=5))
    async with database.transaction() as s:
        other = await data.add_outbox(
            s,
            row=Outbox(
                idempotency_key="tg", channel="telegram", recipient="1", payload={}, next_attempt_at=T0
            ),
        )
    async with database.transaction() as s:
        rows = await data.claim_outbox(s, channels=["sms"], now=T0, lease=timedelta(seconds=60), limit=10)
    assert [r.id for r in rows] == [due]
    assert rows[0].status == OutboxStatus.SENDING and rows[0].attempts == 1
    async with database.transaction() as s:
        assert (
            await data.claim_outbox(s, channels=["sms"], now=T0, lease=timedelta(seconds=60), limit=10) == []
        )
        assert other.id is not None
        assert await data.next_outbox_time(s, channels=["sms"]) == T0 + timedelta(minutes=5)


async def test_an_expired_lease_is_claimed_again_and_a_stale_outcome_is_refused(database: Database) -> None:
    _, ticket_id = await _contact_and_ticket(database)
    row_id = await _queue(database, ticket_id, "crash")
    async with database.transaction() as s:
        (first,) = await data.claim_outbox(s, channels=["sms"], now=T0, lease=timedelta(seconds=60), limit=10)
    later = T0 + timedelta(seconds=61)
    async with database.transaction() as s:
        (second,) = await data.claim_outbox(
            s, channels=["sms"], now=later, lease=timedelta(seconds=60), limit=10
        )
    assert second.id == row_id and second.attempts == 2
    async with database.transaction() as s:
        assert not await data.finish_outbox(
            s, outbox_id=row_id, attempt=first.attempts, status=OutboxStatus.SENT
        )
        assert await data.finish_outbox(
            s, outbox_id=row_id, attempt=second.attempts, status=OutboxStatus.SENT
        )
    async with database.session() as s:
        row = await data.get_outbox(s, outbox_id=row_id)
    assert row is not None and row.status == OutboxStatus.SENT and row.claimed_until is None


async def test_concurrent_claimers_get_disjoint_rows(database: Database) -> None:
    _, ticket_id = await _contact_and_ticket(database)
    ids = {await _queue(database, ticket_id, f"k{n}", recipient=f"+82{n}") for n in range(20)}

    async def claim() -> list[int]:
        async with database.transaction() as s:
            rows = await data.claim_outbox(s, channels=["sms"], now=T0, lease=timedelta(seconds=60), limit=7)
            await asyncio.sleep(0.05)  # hold the claim while the others try
            return [r.id or 0 for r in rows]

    claimed = await asyncio.gather(*(claim() for _ in range(4)))
    flat = [i for batch in claimed for i in batch]
    assert len(flat) == len(set(flat))
    assert set(flat) == ids


async def test_the_conversation_shows_inbound_and_delivered_messages_only(database: Database) -> None:
    contact_id, ticket_id = await _contact_and_ticket(database)
    async with database.transaction() as s:
        question = await data.add_message(
            s,
            message=Message(
                ticket_id=ticket_id,
                contact_id=contact_id,
                direction=Direction.IN,
                channel="sms",
                author="citizen",
                provider_message_id="in-1",
                text="question",
            ),
        )
        sent = await data.add_message(
            s,
            message=Message(
                ticket_id=ticket_id,
                contact_id=contact_id,
                direction=Direction.OUT,
                channel="sms",
                author="bot",
                text="delivered",
            ),
        )
        queued = await data.add_message(
            s,
            message=Message(
                ticket_id=ticket_id,
                contact_id=contact_id,
                direction=Direction.OUT,
                channel="sms",
                author="bot",
                text="not yet",
            ),
        )
        await data.add_outbox(
            s,
            row=Outbox(
                idempotency_key="a",
                message_id=sent.id,
                channel="sms",
                recipient="x",
                payload={},
                status=OutboxStatus.SENT,
            ),
        )
        await data.add_outbox(
            s, row=Outbox(idempotency_key="b", message_id=queued.id, channel="sms", recipient="x", payload={})
        )
    async with database.session() as s:
        seen = await data.conversation(s, contact_id=contact_id)
    assert [m.id for m in seen] == [question.id, sent.id]


async def test_of_several_instances_one_leads_a_job_until_it_closes(database: Database) -> None:
    if database.dialect != "postgresql":
        assert await database.lead("x:mentions")  # SQLite serves one host: it always leads
        return
    from sqlalchemy.ext.asyncio import create_async_engine

    schema = (await _scalar(database, "SELECT current_schema()")) or ""
    url = database.engine.url.render_as_string(hide_password=False)
    other = Database(create_async_engine(url, connect_args={"server_settings": {"search_path": schema}}))
    elsewhere = Database(create_async_engine(url))  # another schema: another city
    try:
        assert await database.lead("x:mentions")
        assert await database.lead("x:mentions")  # asked again: still this instance
        assert not await other.lead("x:mentions")
        assert await other.lead("dispatch:sms")  # another job
        assert await elsewhere.lead("x:mentions")
        await database.close()  # the leader stops: the lock goes with its connection
        assert await other.lead("x:mentions")
    finally:
        await other.close()
        await elsewhere.close()


async def _scalar(database: Database, sql: str) -> str | None:
    from sqlalchemy import text

    async with database.engine.connect() as connection:
        return (await connection.execute(text(sql))).scalar()


async def test_a_row_taken_from_a_dead_sender_says_since_when_it_may_have_been_sent(
    database: Database,
) -> None:
    _, ticket_id = await _contact_and_ticket(database)
    row_id = await _queue(database, ticket_id, "unsure")
    lease = timedelta(seconds=60)
    async with database.transaction() as s:
        (first,) = await data.claim_outbox(
            s, channels=["sms"], now=T0, lease=lease, limit=10, claimed_by="a:1"
        )
    assert (first.claimed_by, first.claimed_at, first.unsure_since) == ("a:1", T0, None)
    # The instance restarts: it takes its own row back at once, not after the lease.
    restart = T0 + timedelta(seconds=5)
    async with database.transaction() as s:
        assert await data.release_claims(s, claimed_by="b:1", now=restart) == 0
        assert await data.release_claims(s, claimed_by="a:1", now=restart) == 1
        (second,) = await data.claim_outbox(
            s, channels=["sms"], now=restart, lease=lease, limit=10, claimed_by="a:1"
        )
    assert second.id == row_id and second.attempts == 2 and second.unsure_since == T0
    async with database.transaction() as s:
        assert await data.finish_outbox(
            s, outbox_id=row_id, attempt=2, status=OutboxStatus.SENT, sent_at=restart
        )
    async with database.session() as s:
        row = await data.get_outbox(s, outbox_id=row_id)
    assert row is not None and row.unsure_since is None


async def test_a_row_put_back_after_a_failed_attempt_is_not_unsure(database: Database) -> None:
    _, ticket_id = await _contact_and_ticket(database)
    row_id = await _queue(database, ticket_id, "retry")
    lease = timedelta(seconds=60)
    async with database.transaction() as s:
        await data.claim_outbox(s, channels=["sms"], now=T0, lease=lease, limit=10, claimed_by="a:1")
        assert await data.finish_outbox(
            s, outbox_id=row_id, attempt=1, status=OutboxStatus.PENDING, next_attempt_at=T0
        )
        (again,) = await data.claim_outbox(
            s, channels=["sms"], now=T0, lease=lease, limit=10, claimed_by="a:1"
        )
    assert again.attempts == 2 and again.unsure_since is None


def test_channels_and_the_store_agree_on_what_names_a_citizen_memory() -> None:
    from channels.base import CITIZEN_MEMORY as channels_prefix
    from store.models import CITIZEN_MEMORY as store_prefix

    assert channels_prefix == store_prefix == "citizen:"
