"""The staff desk's feed and staff actions, with the desk played by an in-memory channel named
"slack": what a department inbox is shown, and what staff can do from it. The Slack adapter's own
tests render the same rows against a stand-in for Slack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from bot import Bot, build
from channels.base import OutboundMessage, StaffAction
from channels.desk import Card, DeliveryMark, ThreadLine
from channels.memory import MemoryChannel
from store import Database
from tests.conftest import ROOT, FakeClock, config_for_tests


class Desk(MemoryChannel):
    name: ClassVar[str] = "slack"


City = tuple[Bot, MemoryChannel, Desk]
KIM = {"staff_id": "slack:U1KIM", "staff_name": "Kim Minji"}


@pytest.fixture
async def city(database: Database, tmp_path: Path) -> AsyncIterator[City]:
    config = config_for_tests(tmp_path)
    desk_config = config.router.desk.model_copy(update={"review_inbox": "#review", "alerts_inbox": "#alerts"})
    config = config.model_copy(update={"router": config.router.model_copy(update={"desk": desk_config})})
    citizen, desk = MemoryChannel(), Desk()
    bot = await build(config, base_dir=ROOT, channels=[citizen, desk], webchat=False, db=database)
    async with bot.running(sweeps=False):
        yield bot, citizen, desk


async def desk_posts(desk: Desk, count: int) -> list[OutboundMessage]:
    return [await desk.pop() for _ in range(count)]


async def test_a_complaint_is_a_card_in_its_departments_inbox_with_a_masked_contact(city: City) -> None:
    _, citizen, desk = city
    receipt = await citizen.push("가로등이 고장났어요 어두워요", sender="+821055501234")
    [card] = await desk_posts(desk, 1)
    assert card.recipient == "#dept-transport" and card.reply_to == receipt.reference
    assert card.desk is not None
    assert isinstance(card.desk, Card)
    shown = (card.desk.reference, card.desk.status, card.desk.department, card.desk.origin, card.desk.text)
    assert shown == (receipt.reference, "forwarded", "transport", "memory", "가로등이 고장났어요 어두워요")
    assert card.desk.contact == "+82******1234" and "5550" not in card.desk.contact
    assert card.desk.actions == ("claim", "resolve", "reassign") and card.desk.due
    assert ("transport", "교통도로과") in card.desk.departments


async def test_later_messages_go_into_the_thread_and_a_thread_reply_reaches_the_citizen_marked(
    city: City,
) -> None:
    bot, citizen, desk = city
    receipt = await citizen.push("가로등이 고장났어요 어두워요")
    assert receipt.reference
    await citizen.pop()
    await desk_posts(desk, 1)
    await citizen.push("아직도 어두워요")
    await citizen.pop()
    [line] = await desk_posts(desk, 1)
    assert line.desk == ThreadLine(reference=receipt.reference, author="citizen", text="아직도 어두워요")

    result = await bot.host.staff_action(
        StaffAction(
            kind="reply", reference=receipt.reference, text="내일 수리합니다", source_id="1700.01", **KIM
        )
    )
    assert result.ok
    assert (await citizen.pop()).text == f"[{receipt.reference}] 교통도로과: 내일 수리합니다"
    card, mark = await desk_posts(desk, 2)  # in progress now; then the reply is marked delivered
    assert card.desk and card.desk.status == "in_progress"
    assert mark.desk == DeliveryMark(
        reference=receipt.reference, source="1700.01", delivered=True, detail="delivered"
    )
    view = await bot.desk.show(receipt.reference)
    assert [e.actor_name for e in view.events if e.kind == "reply"] == ["Kim Minji"]


async def test_a_note_stays_internal(city: City) -> None:
    bot, citizen, desk = city
    receipt = await citizen.push("가로등이 고장났어요 어두워요")
    assert receipt.reference
    await citizen.pop()
    await desk_posts(desk, 1)
    result = await bot.host.staff_action(
        StaffAction(kind="note", reference=receipt.reference, text="현장 확인 필요", **KIM)
    )
    assert result.ok
    await bot.dispatcher.run_once()
    assert citizen.pending() == 0 and desk.pending() == 0
    view = await bot.desk.show(receipt.reference)
    assert [e.detail["text"] for e in view.events if e.kind == "note"] == ["현장 확인 필요"]


async def test_claim_reassign_and_resolve_update_the_card_and_tell_the_citizen(city: City) -> None:
    bot, citizen, desk = city
    receipt = await citizen.push("가로등이 고장났어요 어두워요")
    reference = receipt.reference or ""
    await citizen.pop()
    await desk_posts(desk, 1)

    assert (await bot.host.staff_action(StaffAction(kind="claim", reference=reference, **KIM))).ok
    claimed = (await citizen.pop()).text
    assert claimed.startswith(f"접수번호 {reference}: 교통도로과 담당자가 처리하고 있습니다")
    cards = await desk_posts(desk, 2)  # the status change and the assignee: each refreshes the card
    assert (
        cards[-1].desk and cards[-1].desk.assignee == "Kim Minji" and cards[-1].desk.status == "in_progress"
    )

    moved = await bot.host.staff_action(
        StaffAction(kind="reassign", reference=reference, department="housing", reason="건물 소관", **KIM)
    )
    assert moved.ok
    [card] = await desk_posts(desk, 1)
    assert card.recipient == "#dept-housing" and card.desk and card.desk.status == "forwarded"
    assert "주택건축과" in (await citizen.pop()).text

    done = await bot.host.staff_action(
        StaffAction(kind="resolve", reference=reference, text="교체 완료", **KIM)
    )
    assert done.ok
    told = await citizen.pop()
    assert "교체 완료" in told.text and [b.value for b in told.buttons] == ["1", "2", "3", "4", "5"]
    [card] = await desk_posts(desk, 1)
    assert card.desk and card.desk.status == "resolved" and card.desk.actions == ()
    await citizen.push("5")  # the rating goes into the thread for the department to see
    await citizen.pop()
    [line] = await desk_posts(desk, 1)
    assert line.desk and (line.desk.kind, line.desk.author, line.desk.text) == (
        "thread",
        "citizen",
        "5",
    )


async def test_a_department_may_limit_who_acts_and_a_refusal_says_why(
    database: Database, tmp_path: Path
) -> None:
    config = config_for_tests(tmp_path)
    transport = config.departments["transport"].model_copy(update={"staff": ["U1KIM"]})
    config = config.model_copy(update={"departments": {**config.departments, "transport": transport}})
    citizen, desk = MemoryChannel(), Desk()
    bot = await build(config, base_dir=ROOT, channels=[citizen, desk], webchat=False, db=database)
    async with bot.running(sweeps=False):
        receipt = await citizen.push("가로등이 고장났어요 어두워요")
        reference = receipt.reference or ""
        lee = {"staff_id": "slack:U2LEE", "staff_name": "Lee"}
        refused = await bot.host.staff_action(StaffAction(kind="claim", reference=reference, **lee))
        assert not refused.ok and "not on the staff list" in refused.message
        assert (await bot.host.staff_action(StaffAction(kind="claim", reference=reference, **KIM))).ok
        view = await bot.desk.show(reference)
        assert [e.actor for e in view.events if e.kind == "claimed"] == ["staff:slack:U1KIM"]


async def test_a_review_item_lists_the_suggestions_and_send_answers_the_citizen(city: City) -> None:
    bot, citizen, desk = city
    question = "대형 쓰레기 버리는 법"
    decision = bot.router.decide(question, "ko")
    assert decision.review is not None  # a likely answer, not a sure one: a person checks it today
    receipt = await citizen.push(question)
    await citizen.pop()  # "received"
    [item] = await desk_posts(desk, 1)
    assert item.recipient == "#review" and item.desk and item.desk.kind == "review"
    assert item.desk.question == question and item.desk.suggestions[0].entry == decision.review.entry.id
    sent = await bot.host.staff_action(
        StaffAction(kind="review_send", reference=receipt.reference, entry=decision.review.entry.id, **KIM)
    )
    assert sent.ok
    assert (await citizen.pop()).text.startswith("대형 폐기물")


async def test_a_delivery_that_fails_for_good_is_in_the_thread_and_the_alerts(city: City) -> None:
    bot, citizen, desk = city
    receipt = await citizen.push("가로등이 고장났어요 어두워요")
    await citizen.pop()
    await desk_posts(desk, 1)
    citizen.failures = ["permanent"]
    await bot.desk.reply(receipt.reference or "", "내일 수리합니다", staff=_cli())
    posts = await desk_posts(desk, 4)  # card (in progress), the reply copied in, the failure, the alert
    kinds = [(p.recipient, p.desk.kind if p.desk else None) for p in posts]
    assert ("#dept-transport", "thread") in kinds and ("#alerts", "alert") in kinds
    [alert] = [p for p in posts if p.recipient == "#alerts"]
    assert alert.desk and receipt.reference in alert.desk.text and "not delivered" in alert.desk.text


async def test_lookup_gives_the_history(city: City) -> None:
    bot, citizen, _ = city
    receipt = await citizen.push("가로등이 고장났어요 어두워요")
    found = await bot.host.staff_action(StaffAction(kind="lookup", reference=receipt.reference, **KIM))
    assert found.ok and found.message.startswith(f"{receipt.reference}: forwarded, transport")
    assert any("created" in line for line in found.lines) and any(
        "->forwarded" in line for line in found.lines
    )
    missing = await bot.host.staff_action(StaffAction(kind="lookup", reference="2026-999999", **KIM))
    assert not missing.ok and missing.message == "no ticket 2026-999999"


def _cli():  # type: ignore[no-untyped-def]
    from router import Staff

    return Staff(id="cli:park", name="Park")


async def test_a_broken_faq_edit_is_an_alert(city: City) -> None:
    from knowledge.loader import KnowledgeError, Problem

    bot, _, desk = city
    problem = Problem(
        file="knowledge/faq/waste.yaml", line=12, entry="bulky-waste", message="answer is missing"
    )
    await bot.desk.report_knowledge_error(KnowledgeError([problem]))
    [alert] = await desk_posts(desk, 1)
    assert alert.recipient == "#alerts" and alert.desk and "waste.yaml" in alert.desk.text
    assert "waste.yaml:12" in alert.desk.text and "bulky-waste" in alert.desk.text


async def test_an_escalation_is_in_the_thread_and_mentions_the_lead(
    database: Database, tmp_path: Path, clock: FakeClock
) -> None:
    config = config_for_tests(tmp_path)
    transport = config.departments["transport"].model_copy(update={"lead": "U0LEAD"})
    config = config.model_copy(update={"departments": {**config.departments, "transport": transport}})
    citizen, desk = MemoryChannel(), Desk()
    bot = await build(
        config, base_dir=ROOT, channels=[citizen, desk], webchat=False, db=database, clock=clock
    )
    async with bot.running(sweeps=False):
        receipt = await citizen.push("가로등이 고장났어요 어두워요")
        await citizen.pop()
        await desk_posts(desk, 1)
        ticket = (await bot.desk.show(receipt.reference or "")).ticket
        assert ticket.due_at is not None
        clock.now = ticket.due_at + timedelta(minutes=1)
        result = await bot.sweeper.sweep_once()
        assert result.escalated == 1
        bot.dispatcher.wake()
        late = await citizen.pop()
        assert late.text == bot.lifecycle.render_notice(
            (await bot.desk.show(receipt.reference or "")).ticket, "late"
        )
        [line] = await desk_posts(desk, 1)  # no status change: no card, one line in the thread
        assert line.desk and line.desk.kind == "thread" and line.desk.author == "system"
        assert line.desk.mention == "U0LEAD"
        assert "escalated" in line.desk.text


async def test_a_sensitive_ticket_cannot_be_looked_up_by_anyone(city: City) -> None:
    bot, citizen, desk = city
    receipt = await citizen.push("공무원이 뇌물을 요구했습니다")
    [card] = await desk_posts(desk, 1)
    assert card.recipient == "#restricted-integrity"  # only the restricted inbox sees it
    found = await bot.host.staff_action(StaffAction(kind="lookup", reference=receipt.reference, **KIM))
    assert not found.ok and found.lines == ()


async def test_staff_acting_from_the_command_line_update_the_desk_too(
    database: Database, tmp_path: Path
) -> None:
    from sqlmodel import select

    from channels.slack_config import SlackConfig
    from router import Staff
    from store import Outbox
    from tests.conftest import with_channels

    slack = SlackConfig(enabled=True, bot_token="xoxb-x", signing_secret="s")
    citizen = MemoryChannel()
    config = with_channels(config_for_tests(tmp_path), slack=slack)
    server = await build(
        config, base_dir=ROOT, channels=[citizen], webchat=False, db=database, providers=False
    )
    await citizen.start(server.host)
    receipt = await citizen.push("가로등이 고장났어요 어두워요")
    # `bot.py tickets reply` builds the bot without the Slack adapter, like this:
    cli = await build(config, base_dir=ROOT, webchat=False, providers=False, db=database, migrate=False)
    await cli.desk.reply(receipt.reference or "", "내일 수리합니다", staff=Staff(id="cli:park", name="Park"))
    async with database.session() as session:
        rows = (await session.exec(select(Outbox).where(Outbox.channel == "slack"))).all()
    kinds = [r.payload["desk"]["kind"] for r in rows]
    assert kinds.count("thread") == 1 and "card" in kinds  # waiting for the server to send them
