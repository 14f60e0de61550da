"""Intake end to end on the in-memory channel, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from bot import Bot
from channels.memory import MemoryChannel
from store import Direction, Message, Outbox, OutboxStatus, Ticket, TicketEvent, TicketStatus, data
from tests.conftest import FakeClock

City = tuple[Bot, MemoryChannel]


async def ticket_of(bot: Bot, reference: str | None) -> Ticket:
    assert reference is not None
    async with bot.db.session() as s:
        ticket = await data.get_ticket(s, reference=reference)
    assert ticket is not None
    return ticket


async def events_of(bot: Bot, ticket: Ticket) -> list[TicketEvent]:
    async with bot.db.session() as s:
        return list(await data.ticket_events(s, ticket_id=ticket.id or 0))


async def messages_of(bot: Bot, ticket: Ticket) -> list[Message]:
    async with bot.db.session() as s:
        return list(await data.ticket_messages(s, ticket_id=ticket.id or 0))


async def test_a_known_question_is_answered_at_once_in_its_language(city: City) -> None:
    bot, memory = city
    receipt = await memory.push("소파 버리는 방법")
    reply = await memory.pop()
    assert reply.text.startswith("대형 폐기물은 구청")
    assert reply.recipient == "citizen-1" and reply.channel == "memory"
    ticket = await ticket_of(bot, receipt.reference)
    assert ticket.status == TicketStatus.ANSWERED
    assert ticket.faq_entry == "bulky-waste" and ticket.department == "environment"
    assert ticket.language == "ko" and ticket.first_response_at is not None
    kinds = [(e.kind, e.from_status, e.to_status) for e in await events_of(bot, ticket)]
    assert kinds == [("created", None, "new"), ("status", "new", "answered")]

    await memory.push("How do I throw away a sofa?", sender="citizen-2")
    assert (await memory.pop()).text.startswith("Register bulky waste")


async def test_anything_else_gets_a_reference_a_department_and_a_due_time(
    city: City, clock: FakeClock
) -> None:
    bot, memory = city
    receipt = await memory.push("The streetlight in front of my house has been broken for a week")
    reply = await memory.pop()
    ticket = await ticket_of(bot, receipt.reference)
    assert ticket.status == TicketStatus.FORWARDED
    assert ticket.department == "transport"  # the keyword rule "streetlight"
    assert ticket.due_at == clock.now + timedelta(hours=72)
    # Monday 10:00 in Seoul + 72 h: Thursday 10:00.
    assert (
        reply.text
        == f"Ticket {ticket.reference}: sent to Transport and Roads. Expected by Thu, Nov 26 10:00."
    )
    (forwarded,) = [e for e in await events_of(bot, ticket) if e.kind == "status"]
    assert forwarded.detail["reason"] == "keyword:streetlight"


async def test_a_text_with_no_rule_and_no_faq_goes_to_triage_in_korean(city: City) -> None:
    bot, memory = city
    receipt = await memory.push("구청장님께 드리는 건의사항이 있습니다")
    reply = await memory.pop()
    ticket = await ticket_of(bot, receipt.reference)
    assert ticket.department == "triage"
    assert reply.text.startswith(
        f"접수번호 {ticket.reference}: 민원총괄팀에 전달했습니다. 처리 예정: 11월 24일 (화) 10:00"
    )


async def test_a_handoff_always_entry_is_forwarded_to_its_department_never_answered(city: City) -> None:
    bot, memory = city
    receipt = await memory.push("There is a pothole in the road")
    reply = await memory.pop()
    ticket = await ticket_of(bot, receipt.reference)
    assert ticket.status == TicketStatus.FORWARDED and ticket.department == "transport"
    assert ticket.faq_entry is None
    assert "pothole" not in reply.text.lower() and ticket.reference in reply.text


async def test_the_same_provider_message_twice_is_stored_once_and_answered_once(city: City) -> None:
    bot, memory = city
    first = await memory.push("소파 버리는 방법", message_id="SM-1")
    again = await memory.push("소파 버리는 방법", message_id="SM-1")
    assert not first.duplicate and again.duplicate and again.reference == first.reference
    await memory.pop()
    await bot.dispatcher.run_once()
    assert memory.pending() == 0 and len(memory.sent) == 1
    ticket = await ticket_of(bot, first.reference)
    assert [m.direction for m in await messages_of(bot, ticket)] == [Direction.IN, Direction.OUT]


async def test_simultaneous_retries_of_one_message_store_it_once(city: City) -> None:
    _, memory = city
    receipts = await asyncio.gather(*(memory.push("여권 만들려면", message_id="SM-race") for _ in range(5)))
    assert sorted(r.duplicate for r in receipts) == [False, True, True, True, True]
    assert len({r.reference for r in receipts}) == 1
    await memory.pop()
    await asyncio.sleep(0.1)
    assert len(memory.sent) == 1


async def test_a_later_message_joins_the_open_ticket(city: City) -> None:
    bot, memory = city
    first = await memory.push("우리 집 앞 가로등이 꺼졌어요")
    await memory.pop()
    second = await memory.push("사진도 보내드릴게요. 3일째 꺼져 있어요")
    reply = await memory.pop()
    assert second.reference == first.reference
    assert reply.text == f"접수번호 {first.reference}에 추가했습니다. 담당 부서에 전달됩니다."
    ticket = await ticket_of(bot, first.reference)
    texts = [m.text for m in await messages_of(bot, ticket) if m.direction == Direction.IN]
    assert texts == ["우리 집 앞 가로등이 꺼졌어요", "사진도 보내드릴게요. 3일째 꺼져 있어요"]


async def test_a_message_naming_its_ticket_joins_that_ticket_not_the_latest(city: City) -> None:
    """A provider's thread (an e-mail's subject or In-Reply-To) names the ticket; the router follows
    it when the ticket is the sender's, and ignores it when it is someone else's."""
    bot, memory = city
    older = await memory.push("우리 집 앞 가로등이 꺼졌어요")
    await memory.pop()
    newer = await memory.push("여권 발급은 어디서 하나요?")  # an FAQ answer: the latest ticket now
    await memory.pop()
    assert older.reference != newer.reference
    joined = await memory.push("어제부터는 옆 가로등도 깜빡거립니다", reference=older.reference)
    assert joined.reference == older.reference
    assert (await memory.pop()).text == f"접수번호 {older.reference}에 추가했습니다. 담당 부서에 전달됩니다."

    other = await memory.push("쓰레기가 길에 쌓여 있어요", sender="citizen-2", reference=older.reference)
    await memory.pop()
    assert other.reference not in (older.reference, None)
    ticket = await ticket_of(bot, older.reference)
    texts = [m.text for m in await messages_of(bot, ticket) if m.direction == Direction.IN]
    assert texts == ["우리 집 앞 가로등이 꺼졌어요", "어제부터는 옆 가로등도 깜빡거립니다"]


async def test_what_goes_out_says_which_notice_it_is_and_what_filled_it(city: City) -> None:
    """Doors that may push only approved templates (WhatsApp) or some notices (Kakao) read these."""
    _, memory = city
    forwarded = await memory.push("The streetlight in front of my house has been broken for a week")
    notice = await memory.pop()
    assert notice.notice == "forwarded"
    assert notice.variables is not None and notice.variables["reference"] == forwarded.reference
    assert notice.variables["department"] == "Transport and Roads" and notice.variables["due"]
    answered = await memory.push("How do I throw away a sofa?", sender="citizen-2")
    answer = await memory.pop()
    assert answer.notice == "answer" and answer.variables is not None
    assert answer.variables["reference"] == answered.reference
    assert answer.variables["text"].startswith("Register bulky waste")
    assert answer.to_payload() == type(answer).from_payload(answer.to_payload()).to_payload()


async def test_a_provider_that_waits_gets_the_replies_in_the_receipt_and_they_go_once(
    city: City, clock: FakeClock
) -> None:
    """A Kakao skill call holds its request open for the answer: the replies come back in the
    receipt, and the dispatcher leaves them alone for the window unless the channel never gave them."""
    bot, memory = city
    given = await memory.push("How do I throw away a sofa?", answer_window_seconds=5)
    (answer,) = given.replies
    assert answer.text.startswith("Register bulky waste") and answer.notice == "answer"
    await bot.dispatcher.run_once()
    assert memory.pending() == 0  # held for the channel's own response
    await bot.host.answered("memory", [answer.idempotency_key])
    clock.now += timedelta(seconds=6)
    await bot.dispatcher.run_once()
    assert memory.pending() == 0 and memory.sent == []  # given in the response: never sent again
    async with bot.db.session() as s:
        (row,) = await s.exec(select(Outbox).where(Outbox.idempotency_key == answer.idempotency_key))
    assert (row.status, row.provider_message_id) == (OutboxStatus.SENT, "answer")

    # The channel could not answer in time (its response was lost): the dispatcher sends them after.
    lost = await memory.push("The streetlight in front of my house is broken", answer_window_seconds=5)
    (notice,) = lost.replies
    await bot.dispatcher.run_once()
    assert memory.pending() == 0
    clock.now += timedelta(seconds=6)
    await bot.dispatcher.run_once()
    assert (await memory.pop()).idempotency_key == notice.idempotency_key
    assert (await memory.push("Thanks", message_id="late-retry", sender="citizen-9")).replies == ()


async def test_a_report_whose_form_chose_its_department_goes_there_unanswered(city: City) -> None:
    """An Open311 service names its department: the FAQ does not answer the report, and an unknown
    department is ignored (the usual routing then decides)."""
    bot, memory = city
    chosen = await memory.push("How do I throw away a sofa?", department="environment")
    reply = await memory.pop()
    ticket = await ticket_of(bot, chosen.reference)
    assert (ticket.status, ticket.department) == (TicketStatus.FORWARDED, "environment")
    assert reply.notice == "forwarded"
    (forwarded,) = [e for e in await events_of(bot, ticket) if e.kind == "status"]
    assert forwarded.detail["reason"] == "chosen:environment"
    unknown = await memory.push("How do I throw away a sofa?", sender="citizen-2", department="nowhere")
    assert (await memory.pop()).notice == "answer"
    assert (await ticket_of(bot, unknown.reference)).status == TicketStatus.ANSWERED


async def test_an_faq_question_during_an_open_ticket_is_still_answered(city: City) -> None:
    _, memory = city
    first = await memory.push("우리 집 앞 가로등이 꺼졌어요")
    await memory.pop()
    second = await memory.push("여권 발급은 어디서 하나요?")
    assert (await memory.pop()).text.startswith("여권은 구청")
    assert second.reference != first.reference


@pytest.mark.parametrize(
    ("text", "language"),
    [("Where do I apply for a passport?", "en"), ("여권 만들려면", "ko"), ("12345", "ko")],
)
async def test_the_ticket_language_comes_from_the_text(city: City, text: str, language: str) -> None:
    bot, memory = city
    receipt = await memory.push(text)
    await memory.pop()
    assert (await ticket_of(bot, receipt.reference)).language == language
