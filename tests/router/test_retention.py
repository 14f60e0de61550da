"""The retention period on a running bot with a fake clock, on SQLite and PostgreSQL: a ticket's life,
then years later its words and the citizen's address are gone and the statistics remain."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from bot import build
from channels.base import CITIZEN_MEMORY
from channels.memory import MemoryChannel
from router import Staff
from store import Database, Outbox, TicketStatus, data, retention
from tests.conftest import ROOT, FakeClock, config_for_tests
from tests.router.test_lifecycle import City, ticket

KIM = Staff(id="cli:kim", name="Kim")


async def _resolved_rated_and_closed(city: City, clock: FakeClock) -> str:
    bot, memory = city
    receipt = await memory.push("The streetlight outside 12 Sejong-daero is out", sender="+821012345678")
    await memory.pop()
    assert receipt.reference
    await bot.desk.reply(receipt.reference, "Mr Kim, we will be there today.", staff=KIM)
    await memory.pop()
    await bot.desk.resolve(receipt.reference, "Fixed.", staff=KIM)
    await memory.pop()
    clock.now += timedelta(minutes=5)
    await memory.push("5", sender="+821012345678")
    await memory.pop()
    await memory.push("Thanks! Call me on 010-1234-5678 if it breaks again", sender="+821012345678")
    await memory.pop()
    clock.now += timedelta(hours=73)
    assert (await bot.sweeper.sweep_once()).closed == 1
    return receipt.reference


async def test_years_after_closing_the_words_and_address_are_gone_and_the_statistics_stay(
    city: City, clock: FakeClock
) -> None:
    bot, memory = city
    reference = await _resolved_rated_and_closed(city, clock)
    assert bot.config.router.retention.days == 1095  # the shipped config.yaml

    # What doors remember about a citizen goes as long after it was last written; a cursor stays.
    await bot.host.remember("email", f"{CITIZEN_MEMORY}thread:2026-000001", '{"subject": "Mr Kim"}')
    await bot.host.remember("email", "uid", "1700000000:42")
    clock.now += timedelta(days=1094)
    assert await bot.sweeper.purge_once() == retention.Purged()  # not yet
    clock.now += timedelta(days=2)
    purged = await bot.sweeper.purge_once()

    assert (purged.tickets, purged.contacts, purged.memories) == (1, 1, 1) and purged.messages >= 6
    assert await bot.host.recall("email", f"{CITIZEN_MEMORY}thread:2026-000001") is None
    assert await bot.host.recall("email", "uid") == "1700000000:42"
    view = await bot.desk.show(reference)
    assert {m.text for m in view.messages} == {""}
    assert view.contact.address == f"purged:{view.contact.id}"
    async with bot.db.session() as s:
        rows = (await s.exec(select(Outbox).where(Outbox.ticket_id == view.ticket.id))).all()
    assert len(rows) == 5 and {(r.recipient, str(r.payload)) for r in rows} == {("", "{}")}
    for personal in ("Sejong", "1234-5678", "+821012345678", "Mr Kim"):
        assert personal not in repr(view) + repr(rows)
    assert [e.detail for e in view.events if e.kind == "reply"] == [{}]
    t = view.ticket
    assert (t.status, t.rating, t.rating_comment, t.department) == (TicketStatus.CLOSED, 5, None, "transport")
    assert t.resolved_at is not None and t.first_response_at is not None
    async with bot.db.session() as s:
        decisions = await data.first_decisions(s, statuses=["forwarded"])
        assert [d.reference for d in decisions] == []  # `faq gaps` has no empty question to show
        assert [e.ticket_id for e in await data.routing_examples(s)] == []

    # Writing again is a new beginning: a new contact, a new ticket, the answer reaches the phone.
    again = await memory.push("The streetlight is out again", sender="+821012345678")
    reply = await memory.pop()
    assert again.reference != reference and reply.recipient == "+821012345678"
    assert (await ticket(bot, again.reference)).contact_id != view.contact.id


async def test_with_no_retention_period_nothing_is_ever_purged(
    database: Database, tmp_path: Path, clock: FakeClock
) -> None:
    config = config_for_tests(tmp_path)
    forever = config.router.retention.model_copy(update={"days": None})
    config = config.model_copy(update={"router": config.router.model_copy(update={"retention": forever})})
    memory = MemoryChannel()
    bot = await build(config, base_dir=ROOT, channels=[memory], webchat=False, db=database, clock=clock)
    async with bot.running(sweeps=False):
        reference = await _resolved_rated_and_closed((bot, memory), clock)
        clock.now += timedelta(days=3650)
        assert await bot.sweeper.purge_once() == retention.Purged()
        view = await bot.desk.show(reference)
    assert view.contact.address == "+821012345678" and view.messages[0].text.startswith("The streetlight")


async def test_the_server_purges_as_soon_as_it_starts(city: City, clock: FakeClock) -> None:
    bot, _ = city
    reference = await _resolved_rated_and_closed(city, clock)
    clock.now += timedelta(days=1100)
    bot.sweeper.start()
    try:
        for _ in range(200):  # ten seconds at most
            if (await ticket(bot, reference)).purged_at is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        await bot.sweeper.stop()
    assert (await ticket(bot, reference)).purged_at is not None
