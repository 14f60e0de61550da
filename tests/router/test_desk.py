"""Staff actions: a reply reaches the citizen's channel, resolving tells them, the trail records who."""

from __future__ import annotations

import pytest

from bot import Bot
from channels.base import StaffAction
from channels.memory import MemoryChannel
from router import InvalidTransition, Staff, TicketNotFound
from store import TicketStatus

City = tuple[Bot, MemoryChannel]
KIM = Staff(id="cli:kim", name="Kim Minji")


async def forwarded_ticket(city: City) -> str:
    _, memory = city
    receipt = await memory.push("The streetlight on Main Street is out")
    await memory.pop()
    assert receipt.reference
    return receipt.reference


async def test_a_staff_reply_reaches_the_citizen_on_the_tickets_channel(city: City) -> None:
    bot, memory = city
    reference = await forwarded_ticket(city)
    ticket = await bot.desk.reply(reference, "A crew will fix it tomorrow morning.", staff=KIM)
    reply = await memory.pop()
    assert reply.recipient == "citizen-1" and reply.channel == "memory"
    assert reply.text == f"[{reference}] Transport and Roads: A crew will fix it tomorrow morning."
    assert ticket.status == TicketStatus.IN_PROGRESS
    view = await bot.desk.show(reference)
    assert [(e.kind, e.actor, e.actor_name) for e in view.events[-2:]] == [
        ("status", "staff:cli:kim", "Kim Minji"),
        ("reply", "staff:cli:kim", "Kim Minji"),
    ]
    assert view.messages[-1].author == "staff:cli:kim"


async def test_resolving_tells_the_citizen(city: City) -> None:
    bot, memory = city
    reference = await forwarded_ticket(city)
    ticket = await bot.desk.resolve(reference, "The lamp was replaced.", staff=KIM)
    assert ticket.status == TicketStatus.RESOLVED and ticket.resolved_at is not None
    reply = await memory.pop()
    assert reply.text == (
        f"Ticket {reference} is resolved. The lamp was replaced. How did we do? Reply 1-5 (5 = very good)."
    )
    assert [b.value for b in reply.buttons] == ["1", "2", "3", "4", "5"]
    assert ticket.rating_requested_at is not None


async def test_an_invalid_transition_is_refused_with_the_reason(city: City) -> None:
    bot, memory = city
    receipt = await memory.push("여권 만들려면")
    await memory.pop()
    assert receipt.reference
    with pytest.raises(InvalidTransition, match=r"is answered; it cannot become resolved \(allowed: closed,"):
        await bot.desk.resolve(receipt.reference, staff=KIM)
    assert memory.pending() == 0


async def test_unknown_references_and_empty_replies_are_errors(city: City) -> None:
    bot, _ = city
    with pytest.raises(TicketNotFound, match="no ticket 2026-999999"):
        await bot.desk.reply("2026-999999", "hello", staff=KIM)
    reference = await forwarded_ticket(city)
    with pytest.raises(ValueError, match="needs some text"):
        await bot.desk.reply(reference, "   ", staff=KIM)


async def test_notes_are_internal_or_public_and_never_sent(city: City) -> None:
    bot, memory = city
    reference = await forwarded_ticket(city)
    await bot.desk.note(reference, "  called the contractor ", staff=KIM)
    await bot.desk.note(reference, "A crew is booked for Wednesday.", staff=KIM, public=True)
    view = await bot.desk.show(reference)
    assert [(e.kind, e.detail, e.actor_name) for e in view.events[-2:]] == [
        ("note", {"text": "called the contractor"}, "Kim Minji"),
        ("public_note", {"text": "A crew is booked for Wednesday."}, "Kim Minji"),
    ]
    assert view.ticket.status == TicketStatus.FORWARDED  # a note is not work on the ticket
    assert memory.pending() == 0
    with pytest.raises(ValueError, match="a public note needs some text"):
        await bot.desk.note(reference, " ", staff=KIM, public=True)


async def test_a_public_note_from_the_staff_desk(city: City) -> None:
    bot, memory = city
    reference = await forwarded_ticket(city)
    action = StaffAction(
        kind="public_note", staff_id="slack:U1", staff_name="Lee", reference=reference, text="On its way"
    )
    result = await bot.host.staff_action(action)
    assert (result.ok, result.message) == (True, "Public note shown on the ticket's public page.")
    view = await bot.desk.show(reference)
    assert (view.events[-1].kind, view.events[-1].detail) == ("public_note", {"text": "On its way"})
    assert memory.pending() == 0
