"""The ticket lifecycle with a fake clock, on SQLite and PostgreSQL: same-day answers around the
cutoff, weekends and holidays, reminders and escalations, reopening, ratings, asking for a person,
sensitive reports and status questions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot import Bot, build
from channels.memory import MemoryChannel
from router import Staff
from store import Ticket, TicketStatus, data
from tests.conftest import ROOT, FakeClock, config_for_tests

City = tuple[Bot, MemoryChannel]
SEOUL = ZoneInfo("Asia/Seoul")
KIM = Staff(id="cli:kim", name="Kim")
RECEIVED = "Ticket {reference}: received. A staff member will check the answer and reply by {due}."


def kst(day: str, time: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=SEOUL)


async def ticket(bot: Bot, reference: str | None) -> Ticket:
    assert reference is not None
    async with bot.db.session() as s:
        found = await data.get_ticket(s, reference=reference)
    assert found is not None
    return found


async def kinds(bot: Bot, reference: str) -> list[str]:
    return [
        e.kind if e.kind != "status" else f"{e.from_status}->{e.to_status}"
        for e in (await bot.desk.show(reference)).events
    ]


# --- same-day answers: the cutoff, weekends and holidays ---------------------------------------


async def test_a_likely_answer_before_the_cutoff_is_due_the_same_day_and_staff_confirm_it(
    city: City, clock: FakeClock
) -> None:
    bot, memory = city
    clock.now = kst("2026-11-23", "10:00")  # Monday
    receipt = await memory.push("furniture disposal sticker")
    notice = await memory.pop()
    t = await ticket(bot, receipt.reference)
    assert t.status == TicketStatus.REVIEW and t.department == "environment" and t.category == "bulky-waste"
    assert t.due_at == kst("2026-11-23", "18:00")
    assert notice.text == RECEIVED.format(reference=t.reference, due="Mon, Nov 23 18:00")

    (item,) = await bot.desk.review_queue()
    assert item.question == "furniture disposal sticker" and item.suggestions[0][0].id == "bulky-waste"
    clock.now = kst("2026-11-23", "11:30")
    await bot.desk.send_review(t.reference, staff=KIM)
    answer = await memory.pop()
    assert answer.text.startswith("Register bulky waste with your district office")
    assert answer.text.endswith("Reply 0 for a person.")
    t = await ticket(bot, t.reference)
    assert t.status == TicketStatus.ANSWERED and t.faq_entry == "bulky-waste"
    assert t.first_response_at == kst("2026-11-23", "11:30")
    assert (await kinds(bot, t.reference))[-2:] == ["review->answered", "review_sent"]


async def test_an_edited_review_answer_is_sent_and_recorded_as_edited(city: City, clock: FakeClock) -> None:
    bot, memory = city
    receipt = await memory.push("furniture disposal sticker")
    await memory.pop()
    assert receipt.reference
    await bot.desk.send_review(receipt.reference, staff=KIM, text="Call the district office on 120.")
    assert (await memory.pop()).text.startswith("Call the district office on 120.\n")
    view = await bot.desk.show(receipt.reference)
    assert view.events[-2].detail == {"entry": "bulky-waste", "edited": True}
    assert view.events[-1].detail["text"] == "Call the district office on 120."


async def test_after_the_cutoff_the_answer_is_due_the_next_working_day(city: City, clock: FakeClock) -> None:
    bot, memory = city
    clock.now = kst("2026-11-23", "18:30")  # Monday evening
    receipt = await memory.push("furniture disposal sticker")
    assert (await ticket(bot, receipt.reference)).due_at == kst("2026-11-24", "18:00")


async def test_friday_evening_and_the_weekend_are_due_on_monday(city: City, clock: FakeClock) -> None:
    bot, memory = city
    clock.now = kst("2026-11-27", "18:00")  # Friday at the cutoff
    friday = await memory.push("furniture disposal sticker", sender="a")
    clock.now = kst("2026-11-29", "11:00")  # Sunday
    sunday = await memory.push("furniture disposal sticker", sender="b")
    assert (await ticket(bot, friday.reference)).due_at == kst("2026-11-30", "18:00")
    assert (await ticket(bot, sunday.reference)).due_at == kst("2026-11-30", "18:00")


async def test_a_public_holiday_is_not_a_working_day(city: City, clock: FakeClock) -> None:
    bot, memory = city
    clock.now = kst("2026-12-24", "19:00")  # Thursday evening; Friday is Christmas
    receipt = await memory.push("furniture disposal sticker")
    notice = await memory.pop()
    assert (await ticket(bot, receipt.reference)).due_at == kst("2026-12-28", "18:00")
    assert "Mon, Dec 28 18:00" in notice.text


async def test_a_forwarded_ticket_counts_working_hours_over_the_weekend(city: City, clock: FakeClock) -> None:
    bot, memory = city
    clock.now = kst("2026-11-27", "17:00")  # Friday; transport has 27 working hours
    receipt = await memory.push("The streetlight on my corner is out")
    notice = await memory.pop()
    assert (await ticket(bot, receipt.reference)).due_at == kst("2026-12-02", "17:00")
    assert notice.text.endswith("Expected by Wed, Dec 2 17:00.")


# --- the sweep: reminders and escalations -------------------------------------------------------


async def test_a_reminder_comes_once_before_the_due_time(city: City, clock: FakeClock) -> None:
    bot, memory = city
    receipt = await memory.push("The streetlight on my corner is out")  # Mon 10:00, due Thu 10:00
    await memory.pop()
    assert receipt.reference
    clock.now = kst("2026-11-26", "05:00")
    assert (await bot.sweeper.sweep_once()).reminded == 0
    clock.now = kst("2026-11-26", "06:30")  # within 4 hours of the due time
    assert (await bot.sweeper.sweep_once()).reminded == 1
    assert (await bot.sweeper.sweep_once()).reminded == 0
    assert (await kinds(bot, receipt.reference)).count("reminder") == 1
    assert memory.pending() == 0  # reminders are for staff, not the citizen


async def test_a_late_ticket_is_escalated_once_and_the_citizen_gets_a_new_date(
    city: City, clock: FakeClock, tmp_path: Path
) -> None:
    bot, memory = city
    receipt = await memory.push("The streetlight on my corner is out")  # due Thu 10:00
    await memory.pop()
    assert receipt.reference
    clock.now = kst("2026-11-26", "10:05")
    result = await bot.sweeper.sweep_once()
    assert result.escalated == 1
    late = await memory.pop()
    t = await ticket(bot, receipt.reference)
    assert t.priority == 1 and t.escalations == 1
    assert t.due_at == kst("2026-11-27", "10:05")  # 9 more working hours
    assert late.text == f"Sorry, ticket {t.reference} is taking longer. New expected time: Fri, Nov 27 10:05."
    (escalated,) = [e for e in (await bot.desk.show(t.reference)).events if e.kind == "escalated"]
    assert escalated.detail["was_due"] == kst("2026-11-26", "10:00").astimezone(UTC).isoformat()
    assert escalated.detail["new_due"] == kst("2026-11-27", "10:05").astimezone(UTC).isoformat()
    assert (await bot.sweeper.sweep_once()).escalated == 0

    # A restart (a new bot on the same database) repeats nothing.
    again = await build(
        config_for_tests(tmp_path),
        base_dir=ROOT,
        channels=[MemoryChannel()],
        webchat=False,
        db=bot.db,
        clock=clock,
    )
    assert (await again.sweeper.sweep_once()).escalated == 0

    # Late again at the new due time: escalated again.
    clock.now = kst("2026-11-27", "10:06")
    assert (await bot.sweeper.sweep_once()).escalated == 1
    await memory.pop()
    assert (await ticket(bot, t.reference)).escalations == 2


# --- after the answer: a person, a rating, a reopening ----------------------------------------


async def test_after_an_automatic_answer_0_brings_a_person(city: City, clock: FakeClock) -> None:
    bot, memory = city
    first = await memory.push("소파 버리는 방법")
    await memory.pop()
    again = await memory.push("0")
    notice = await memory.pop()
    assert again.reference == first.reference
    t = await ticket(bot, first.reference)
    assert t.status == TicketStatus.FORWARDED and t.department == "environment"
    assert t.due_at == kst("2026-11-25", "10:00")  # environment: 18 working hours
    assert (
        notice.text == f"접수번호 {t.reference}: 환경청소과에 전달했습니다. 처리 예정: 11월 25일 (수) 10:00."
    )


async def test_a_word_for_a_person_works_in_another_language(city: City) -> None:
    _, memory = city
    first = await memory.push("Where do I apply for a passport?")
    await memory.pop()
    await memory.push("human")
    assert (await memory.pop()).text.startswith(f"Ticket {first.reference}: sent to Citizen Service Desk.")


async def test_a_rating_and_its_comment(city: City, clock: FakeClock) -> None:
    bot, memory = city
    receipt = await memory.push("The streetlight on my corner is out")
    await memory.pop()
    assert receipt.reference
    await bot.desk.resolve(receipt.reference, "Fixed.", staff=KIM)
    await memory.pop()
    clock.now += timedelta(minutes=5)
    await memory.push("４")  # a full-width digit from a phone keyboard
    assert (await memory.pop()).text == "Thank you for rating us. You may add a comment in your next message."
    clock.now += timedelta(minutes=10)
    await memory.push("Quick work, thank you!")
    assert (await memory.pop()).text == "Thank you for your comment."
    t = await ticket(bot, receipt.reference)
    assert (t.rating, t.rating_comment, t.status) == (4, "Quick work, thank you!", TicketStatus.RESOLVED)
    assert (await kinds(bot, receipt.reference))[-2:] == ["rated", "rating_comment"]


async def test_a_message_soon_after_resolution_reopens_the_ticket(city: City, clock: FakeClock) -> None:
    bot, memory = city
    receipt = await memory.push("The streetlight on my corner is out")
    await memory.pop()
    assert receipt.reference
    await bot.desk.resolve(receipt.reference, "Fixed.", staff=KIM)
    await memory.pop()
    clock.now = kst("2026-11-24", "09:30")
    again = await memory.push("It went out again tonight")
    notice = await memory.pop()
    t = await ticket(bot, receipt.reference)
    assert again.reference == t.reference and t.status == TicketStatus.REOPENED and t.resolved_at is None
    assert t.due_at == kst("2026-11-27", "09:30")
    assert notice.text == (
        f"Ticket {t.reference} is reopened and back with Transport and Roads. Expected by Fri, Nov 27 09:30."
    )


async def test_after_the_reopen_window_the_sweep_closes_and_a_new_message_is_a_new_ticket(
    city: City, clock: FakeClock
) -> None:
    bot, memory = city
    receipt = await memory.push("The streetlight on my corner is out")
    await memory.pop()
    assert receipt.reference
    await bot.desk.resolve(receipt.reference, staff=KIM)
    await memory.pop()
    clock.now += timedelta(hours=73)
    assert (await bot.sweeper.sweep_once()).closed == 1
    assert (await ticket(bot, receipt.reference)).status == TicketStatus.CLOSED
    later = await memory.push("The streetlight is out again")
    assert later.reference != receipt.reference


async def test_staff_reopen_and_reassign_leave_reasons_in_the_trail(city: City, clock: FakeClock) -> None:
    bot, memory = city
    receipt = await memory.push("The streetlight on my corner is out")
    await memory.pop()
    assert receipt.reference
    await bot.desk.claim(receipt.reference, staff=KIM)
    assert "is working on it" in (await memory.pop()).text  # the citizen hears a person has it
    t = await bot.desk.reassign(receipt.reference, "safety", reason="exposed wires", staff=KIM)
    assert t.status == TicketStatus.FORWARDED and t.department == "safety" and t.assignee is None
    assert (await memory.pop()).text.startswith(f"Ticket {t.reference}: sent to Public Safety.")
    await bot.desk.resolve(t.reference, staff=KIM)
    await memory.pop()
    await bot.desk.reopen(t.reference, reason="the citizen phoned", staff=KIM)
    assert "reopened" in (await memory.pop()).text
    view = await bot.desk.show(t.reference)
    reasons = [e.detail.get("reason") for e in view.events if e.kind == "status"]
    assert "exposed wires" in reasons and "the citizen phoned" in reasons
    assert (await kinds(bot, t.reference)).count("claimed") == 1


# --- sensitive reports and status questions ------------------------------------------------


async def test_a_sensitive_report_is_never_answered_and_goes_to_the_restricted_inbox(city: City) -> None:
    bot, memory = city
    receipt = await memory.push("구청 직원이 허가를 내주는 대가로 뇌물을 요구했습니다")
    notice = await memory.pop()
    t = await ticket(bot, receipt.reference)
    assert t.sensitive and t.department == "integrity" and t.status == TicketStatus.FORWARDED
    assert t.faq_entry is None
    assert "뇌물" not in notice.text and "비공개" in notice.text
    created = (await bot.desk.show(t.reference)).events[0]
    assert created.detail == {"candidates": []}


async def test_a_citizen_asks_for_the_status_of_their_own_ticket_only(city: City) -> None:
    bot, memory = city
    mine = await memory.push("The streetlight on my corner is out", sender="alice")
    await memory.pop()
    theirs = await memory.push("가로등이 꺼졌어요", sender="bob")
    await memory.pop()
    await memory.push(f"status {mine.reference}?", sender="alice")
    assert (await memory.pop()).text == (
        f"Ticket {mine.reference}: sent to the department. Expected by Thu, Nov 26 10:00.\n"
        f"Details: http://localhost:8080/status/{mine.reference}"
    )
    await memory.push(f"status {theirs.reference}?", sender="alice")
    someone_elses = (await memory.pop()).text
    await memory.push("status 2026-999999?", sender="alice")
    nobodys = (await memory.pop()).text
    assert someone_elses == f"We found no ticket {theirs.reference} from you."
    assert nobodys == "We found no ticket 2026-999999 from you."
    assert (await ticket(bot, theirs.reference)).status == TicketStatus.FORWARDED


async def test_notices_follow_the_citizens_language(city: City) -> None:
    bot, memory = city
    receipt = await memory.push("我家门口的路灯坏了")  # the streetlight at my door is broken
    notice = await memory.pop()
    t = await ticket(bot, receipt.reference)
    assert t.language == "zh"
    assert notice.text == f"受理编号{t.reference}：已转交民愿综合组，预计11月24日周二 10:00前处理。"


async def test_the_status_of_a_finished_ticket_has_no_expected_time(city: City) -> None:
    bot, memory = city
    receipt = await memory.push("The streetlight on my corner is out")
    await memory.pop()
    assert receipt.reference
    await bot.desk.resolve(receipt.reference, staff=KIM)
    resolved = await memory.pop()
    assert (
        "resolved.  " not in resolved.text
        and f"Ticket {receipt.reference} is resolved. How did" in resolved.text
    )
    await memory.push(f"{receipt.reference} status")
    assert (await memory.pop()).text == (
        f"Ticket {receipt.reference}: resolved, Transport and Roads.\n"
        f"Details: http://localhost:8080/status/{receipt.reference}"
    )


async def test_a_new_faq_question_right_after_a_rating_is_answered_not_taken_as_a_comment(
    city: City, clock: FakeClock
) -> None:
    bot, memory = city
    receipt = await memory.push("The streetlight on my corner is out")
    await memory.pop()
    assert receipt.reference
    await bot.desk.resolve(receipt.reference, staff=KIM)
    await memory.pop()
    await memory.push("5")
    await memory.pop()
    await memory.push("How do I throw away a sofa?")
    assert (await memory.pop()).text.startswith("Register bulky waste")
    assert (await ticket(bot, receipt.reference)).rating_comment is None


async def test_the_scheduler_sweeps_as_soon_as_it_starts_and_stops_cleanly(
    city: City, clock: FakeClock
) -> None:
    bot, memory = city
    receipt = await memory.push("The streetlight on my corner is out")
    await memory.pop()
    assert receipt.reference
    clock.now = kst("2026-11-30", "09:00")  # long past due: the first sweep escalates it
    bot.sweeper.start()
    try:
        late = await memory.pop(timeout=10)
    finally:
        await bot.sweeper.stop()
    assert late.text.startswith(f"Sorry, ticket {receipt.reference} is taking longer.")
    assert (await ticket(bot, receipt.reference)).escalations == 1
